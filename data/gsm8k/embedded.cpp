// The embedded default problem set: 30 grade-school math word problems in
// GSM8K's format (question; worked solution with <<expr=value>> calculator
// annotations; final "#### N"), written for this project. Used when no data
// file is given and by tests that must run without ../shared.
#include "data/gsm8k/gsm8k.h"

namespace qwenqat::data {
namespace {

constexpr const char* kEmbeddedJsonl = R"JSONL(
{"question": "A baker makes 14 loaves of bread each morning. She sells 9 loaves and gives 2 to a neighbor. How many loaves does she have left at the end of the morning?", "answer": "She sells or gives away 9 + 2 = <<9+2=11>>11 loaves.\nSo she has 14 - 11 = <<14-11=3>>3 loaves left.\n#### 3"}
{"question": "Omar reads 12 pages of his book every day. The book has 180 pages. How many days will it take him to finish the book?", "answer": "He needs 180 / 12 = <<180/12=15>>15 days to read all the pages.\n#### 15"}
{"question": "A garden has 6 rows of tomato plants with 8 plants in each row. Each plant gives 5 tomatoes. How many tomatoes does the garden give in total?", "answer": "There are 6 * 8 = <<6*8=48>>48 plants.\nThey give 48 * 5 = <<48*5=240>>240 tomatoes.\n#### 240"}
{"question": "Lena buys 3 notebooks at $4 each and a pen for $2. She pays with a $20 bill. How much change does she get?", "answer": "The notebooks cost 3 * 4 = $<<3*4=12>>12.\nWith the pen she spends 12 + 2 = $<<12+2=14>>14.\nHer change is 20 - 14 = $<<20-14=6>>6.\n#### 6"}
{"question": "A bus starts with 27 passengers. At the first stop 8 people get off and 5 get on. At the second stop 11 people get off. How many passengers are on the bus now?", "answer": "After 8 get off there are 27 - 8 = <<27-8=19>>19 passengers.\nAfter 5 get on there are 19 + 5 = <<19+5=24>>24 passengers.\nAfter the second stop there are 24 - 11 = <<24-11=13>>13 passengers.\n#### 13"}
{"question": "A water tank holds 400 liters and is 3/4 full. How many more liters are needed to fill it?", "answer": "The tank has 400 * 3/4 = <<400*3/4=300>>300 liters in it.\nIt needs 400 - 300 = <<400-300=100>>100 more liters.\n#### 100"}
{"question": "Priya earns $15 per hour and works 6 hours a day for 5 days. She spends 20% of her earnings on lunch. How much money does she keep?", "answer": "She earns 15 * 6 = $<<15*6=90>>90 a day.\nOver 5 days she earns 90 * 5 = $<<90*5=450>>450.\nLunch costs her 450 * 0.2 = $<<450*0.2=90>>90.\nShe keeps 450 - 90 = $<<450-90=360>>360.\n#### 360"}
{"question": "A cyclist rides at 18 kilometers per hour for 2.5 hours. How many kilometers does she ride?", "answer": "She rides 18 * 2.5 = <<18*2.5=45>>45 kilometers.\n#### 45"}
{"question": "A class has 32 students. One quarter of them walk to school, and half of the rest take the bus. The others are driven by their parents. How many students are driven?", "answer": "32 / 4 = <<32/4=8>>8 students walk.\nThat leaves 32 - 8 = <<32-8=24>>24 students.\nHalf of them, 24 / 2 = <<24/2=12>>12, take the bus.\nSo 24 - 12 = <<24-12=12>>12 students are driven.\n#### 12"}
{"question": "The temperature at midnight was 4 degrees. By 6 a.m. it had dropped by 9 degrees. What was the temperature at 6 a.m.?", "answer": "The temperature was 4 - 9 = <<4-9=-5>>-5 degrees.\n#### -5"}
{"question": "A shop sells pencils in packs of 12. A teacher needs 150 pencils. How many packs must she buy?", "answer": "150 / 12 = <<150/12=12.5>>12.5 packs, but she can only buy whole packs.\nSo she must buy 13 packs.\n#### 13"}
{"question": "Marco saves $25 every week. He wants a bike that costs $310 and already has $60. How many weeks does he need to save?", "answer": "He still needs 310 - 60 = $<<310-60=250>>250.\nThat takes 250 / 25 = <<250/25=10>>10 weeks.\n#### 10"}
{"question": "A rectangle is 14 meters long and 9 meters wide. What is its perimeter in meters?", "answer": "The perimeter is 2 * (14 + 9) = <<2*(14+9)=46>>46 meters.\n#### 46"}
{"question": "A farmer collects 84 eggs and packs them into cartons of 6. He sells each carton for $3. How much money does he make?", "answer": "He fills 84 / 6 = <<84/6=14>>14 cartons.\nHe makes 14 * 3 = $<<14*3=42>>42.\n#### 42"}
{"question": "Ava is 3 times as old as her brother, who is 7. How old will Ava be in 5 years?", "answer": "Ava is 3 * 7 = <<3*7=21>>21 years old.\nIn 5 years she will be 21 + 5 = <<21+5=26>>26.\n#### 26"}
{"question": "A movie theater has 18 rows of 24 seats. On Friday 350 seats were filled. How many seats were empty?", "answer": "The theater has 18 * 24 = <<18*24=432>>432 seats.\nSo 432 - 350 = <<432-350=82>>82 seats were empty.\n#### 82"}
{"question": "A recipe uses 2 cups of flour for every 3 cups of milk. If Sam uses 12 cups of milk, how many cups of flour does he need?", "answer": "12 cups of milk is 12 / 3 = <<12/3=4>>4 times the recipe.\nHe needs 4 * 2 = <<4*2=8>>8 cups of flour.\n#### 8"}
{"question": "A phone costs $480. It goes on sale for 15% off. What is the sale price?", "answer": "The discount is 480 * 0.15 = $<<480*0.15=72>>72.\nThe sale price is 480 - 72 = $<<480-72=408>>408.\n#### 408"}
{"question": "Three friends share a dinner bill of $54 and a tip of $9 equally. How much does each friend pay?", "answer": "The total is 54 + 9 = $<<54+9=63>>63.\nEach pays 63 / 3 = $<<63/3=21>>21.\n#### 21"}
{"question": "A runner does 400-meter laps. She runs 12 laps on Monday and 15 laps on Tuesday. How many kilometers does she run in total?", "answer": "She runs 12 + 15 = <<12+15=27>>27 laps.\nThat is 27 * 400 = <<27*400=10800>>10800 meters.\nIn kilometers that is 10800 / 1000 = <<10800/1000=10.8>>10.8.\n#### 10.8"}
{"question": "A library had 1,250 books. It donated 175 books and bought 320 new ones. How many books does it have now?", "answer": "After the donation it had 1250 - 175 = <<1250-175=1075>>1,075 books.\nAfter buying more it has 1075 + 320 = <<1075+320=1395>>1,395 books.\n#### 1395"}
{"question": "A car uses 6 liters of fuel per 100 kilometers. How many liters does it use on a 350-kilometer trip?", "answer": "The trip is 350 / 100 = <<350/100=3.5>>3.5 hundreds of kilometers.\nIt uses 3.5 * 6 = <<3.5*6=21>>21 liters.\n#### 21"}
{"question": "Noah has 45 marbles. He gives 1/5 of them to his sister and then loses 6. How many marbles does he have left?", "answer": "He gives away 45 / 5 = <<45/5=9>>9 marbles.\nHe then has 45 - 9 = <<45-9=36>>36 marbles.\nAfter losing 6 he has 36 - 6 = <<36-6=30>>30.\n#### 30"}
{"question": "A factory makes 250 toys per hour and runs 8 hours a day. How many toys does it make in 6 days?", "answer": "It makes 250 * 8 = <<250*8=2000>>2000 toys a day.\nIn 6 days it makes 2000 * 6 = <<2000*6=12000>>12000 toys.\n#### 12000"}
{"question": "Mia has $75 in her account. She pays $120 for a jacket from that account using an overdraft. What is her balance now, in dollars?", "answer": "Her balance is 75 - 120 = <<75-120=-45>>-45 dollars.\n#### -45"}
{"question": "A box of 24 chocolates costs $18. What is the price of one chocolate in dollars?", "answer": "One chocolate costs 18 / 24 = $<<18/24=0.75>>0.75.\n#### 0.75"}
{"question": "A train leaves at 9:15 and arrives at 11:45 the same morning. How many minutes does the trip take?", "answer": "From 9:15 to 11:15 is 2 hours, which is 2 * 60 = <<2*60=120>>120 minutes.\nAdding the last 30 minutes gives 120 + 30 = <<120+30=150>>150 minutes.\n#### 150"}
{"question": "A hall has 7 tables that each need 4 chairs, but there are only 19 chairs. How many more chairs are needed?", "answer": "The tables need 7 * 4 = <<7*4=28>>28 chairs.\nSo 28 - 19 = <<28-19=9>>9 more chairs are needed.\n#### 9"}
{"question": "Jo buys 5 kg of apples at $2.40 per kg and 2 kg of pears at $3.10 per kg. How many dollars does she spend?", "answer": "The apples cost 5 * 2.40 = $<<5*2.40=12>>12.\nThe pears cost 2 * 3.10 = $<<2*3.10=6.2>>6.20.\nShe spends 12 + 6.20 = $<<12+6.2=18.2>>18.20.\n#### 18.2"}
{"question": "A pool holds 36,000 liters and is filled at 50 liters per minute. How many hours does it take to fill the empty pool?", "answer": "It takes 36000 / 50 = <<36000/50=720>>720 minutes.\nThat is 720 / 60 = <<720/60=12>>12 hours.\n#### 12"}
)JSONL";

}  // namespace

std::vector<Gsm8kProblem> embedded_gsm8k() {
  auto problems = parse_gsm8k(kEmbeddedJsonl, "embedded GSM8K set", false);
  for (auto& p : problems) p.line = 0;
  return problems;
}

}  // namespace qwenqat::data
