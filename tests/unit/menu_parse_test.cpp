#include "client/menu.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

#include <string>

namespace sd::client::menu {
namespace {

TEST(MenuText, BannerIsTheSeedsBanner) {
  const std::string eq(60, '=');
  EXPECT_EQ(banner_text(), eq + "\nCLIENTE DEL SISTEMA DISTRIBUIDO\n" + eq + "\n");
}

TEST(MenuText, OptionsAreTheSeedsOptionsInOrder) {
  const std::string dash(60, '-');
  EXPECT_EQ(options_text(), dash + "\nTIPOS DE TAREAS:\n" + dash +
                                "\n1. Hash SHA-256\n2. Fibonacci\n3. Invertir texto\n"
                                "4. Cálculo computacional\n5. Enviar múltiples tareas\n0. Salir\n" +
                                dash + "\n");
  EXPECT_EQ(kChoicePrompt, "Selecciona una opción: ");
}

TEST(MenuOption, EachDigitFromZeroToFiveIsAnOption) {
  EXPECT_EQ(parse_option("0").value, Option::exit);
  EXPECT_EQ(parse_option("1").value, Option::hash);
  EXPECT_EQ(parse_option("2").value, Option::fibonacci);
  EXPECT_EQ(parse_option("3").value, Option::reverse);
  EXPECT_EQ(parse_option("4").value, Option::compute);
  EXPECT_EQ(parse_option("5").value, Option::batch);
}

TEST(MenuOption, BlanksAndCarriageReturnAroundAreIgnored) {
  EXPECT_EQ(parse_option("  3 ").value, Option::reverse);
  EXPECT_EQ(parse_option("1\r").value, Option::hash);
  EXPECT_EQ(parse_option("\t0\n").value, Option::exit);
}

TEST(MenuOption, LettersGetAHintQuotingTheInput) {
  const auto p = parse_option("abc");
  EXPECT_FALSE(p);
  EXPECT_EQ(p.hint, "Opción no válida: \"abc\". Elige un número del 0 al 5.");
}

TEST(MenuOption, EmptyLineGetsAHint) {
  for (const char* line : {"", "   ", "\r"}) {
    const auto p = parse_option(line);
    EXPECT_FALSE(p) << line;
    EXPECT_EQ(p.hint, "No escribiste ninguna opción. Elige un número del 0 al 5.");
  }
}

TEST(MenuOption, OutOfRangeNumbersGetAHint) {
  for (const char* line : {"9", "6", "-1", "10", "99999999999999999999999"}) {
    const auto p = parse_option(line);
    EXPECT_FALSE(p) << line;
    EXPECT_NE(p.hint.find("Elige un número del 0 al 5"), std::string::npos) << p.hint;
  }
}

TEST(MenuOption, NumbersWithTrailingJunkAreNotOptions) {
  EXPECT_FALSE(parse_option("1a"));
  EXPECT_FALSE(parse_option("1 2"));
  EXPECT_FALSE(parse_option("1.0"));
  EXPECT_FALSE(parse_option("0x1"));
}

TEST(MenuOption, VeryLongInputIsCutInTheHint) {
  const auto p = parse_option(std::string(500, 'x'));
  EXPECT_FALSE(p);
  EXPECT_LT(p.hint.size(), 120u);
  EXPECT_NE(p.hint.find("...\""), std::string::npos);
}

TEST(MenuInt, EmptyLineTakesTheDefault) {
  EXPECT_EQ(parse_int("", kFibonacciRule).value, 10);
  EXPECT_EQ(parse_int("  ", kComputeRule).value, 5000);
}

TEST(MenuInt, EmptyLineWithoutDefaultGetsAHint) {
  const auto p = parse_int("", kBatchCountRule);
  EXPECT_FALSE(p);
  EXPECT_EQ(p.hint, "No escribiste nada. Escribe un número entero entre 1 y 1000000.");
}

TEST(MenuInt, AcceptsNumbersInRangeWithBlanksAndPlus) {
  EXPECT_EQ(parse_int("15", kFibonacciRule).value, 15);
  EXPECT_EQ(parse_int(" 0 ", kFibonacciRule).value, 0);
  EXPECT_EQ(parse_int("+20", kBatchCountRule).value, 20);
  EXPECT_EQ(parse_int("10000", kFibonacciRule).value, 10000);
}

TEST(MenuInt, OutOfRangeGetsAHintWithTheRange) {
  const auto p = parse_int("10001", kFibonacciRule);
  EXPECT_FALSE(p);
  EXPECT_EQ(p.hint, "10001 está fuera de rango. Escribe un número entero entre 0 y 10000.");
  EXPECT_FALSE(parse_int("0", kBatchCountRule));
  EXPECT_FALSE(parse_int("-3", kFibonacciRule));
}

TEST(MenuInt, LettersAndDecimalsGetAHint) {
  for (const char* line : {"abc", "1.5", "12abc", "+-3", "++3", "-", "+"}) {
    const auto p = parse_int(line, kFibonacciRule);
    EXPECT_FALSE(p) << line;
    EXPECT_NE(p.hint.find("no es un número entero"), std::string::npos) << line << ": " << p.hint;
  }
}

TEST(MenuInt, HugeNumbersGetATooLargeHint) {
  const auto p = parse_int("123456789012345678901234567890", kComputeRule);
  EXPECT_FALSE(p);
  EXPECT_EQ(p.hint.rfind("Número demasiado grande.", 0), 0u) << p.hint;
}

TEST(MenuTextInput, TextIsKeptAsTyped) {
  EXPECT_EQ(parse_text("Hola Mundo").value, "Hola Mundo");
  EXPECT_EQ(parse_text("  con espacios  ").value, "  con espacios  ");
  EXPECT_EQ(parse_text("canción 😀\r").value, "canción 😀");
}

TEST(MenuTextInput, EmptyOrBlankTextGetsAHint) {
  for (const char* line : {"", "   ", "\r"}) {
    const auto p = parse_text(line);
    EXPECT_FALSE(p);
    EXPECT_EQ(p.hint, "El texto no puede estar vacío. Escribe algún texto.");
  }
}

TEST(MenuTaskType, NamesNumbersAndDefault) {
  EXPECT_EQ(parse_task_type("").value, "hash");
  EXPECT_EQ(parse_task_type("", "sleep").value, "sleep");
  EXPECT_EQ(parse_task_type("Fibonacci").value, "fibonacci");
  EXPECT_EQ(parse_task_type(" compute ").value, "compute");
  EXPECT_EQ(parse_task_type("3").value, "reverse");
  EXPECT_EQ(parse_task_type("sleep").value, "sleep");
}

TEST(MenuTaskType, UnknownTypeGetsAHint) {
  const auto p = parse_task_type("md5");
  EXPECT_FALSE(p);
  EXPECT_EQ(p.hint, "Tipo de tarea no válido: \"md5\". Elige hash, fibonacci, reverse, compute o sleep.");
  EXPECT_FALSE(parse_task_type("5"));
}

TEST(MenuTaskData, TextIsEscapedAsJson) {
  EXPECT_EQ(text_data("Hola Mundo"), R"({"text":"Hola Mundo"})");
  const auto v = boost::json::parse(text_data("comillas \" y \\ y\nsalto"));
  EXPECT_EQ(v.at("text").as_string(), "comillas \" y \\ y\nsalto");
}

TEST(MenuTaskData, NumbersAndSeed) {
  EXPECT_EQ(fibonacci_data(15), R"({"n":15})");
  EXPECT_EQ(compute_data(5000), R"({"iterations":5000})");
  EXPECT_EQ(compute_data(3, "s"), R"({"iterations":3,"seed":"s"})");
  EXPECT_EQ(sleep_data(100), R"({"ms":100})");
}

TEST(MenuTaskData, TaskOptionsMapToWireTypes) {
  EXPECT_EQ(task_type_of(Option::hash), "hash");
  EXPECT_EQ(task_type_of(Option::fibonacci), "fibonacci");
  EXPECT_EQ(task_type_of(Option::reverse), "reverse");
  EXPECT_EQ(task_type_of(Option::compute), "compute");
  EXPECT_EQ(task_type_of(Option::batch), "");
}

TEST(MenuBatch, MixedBatchCyclesTheFourSeedTypes) {
  EXPECT_EQ(mixed_batch_type(0), "hash");
  EXPECT_EQ(mixed_batch_type(1), "fibonacci");
  EXPECT_EQ(mixed_batch_type(2), "reverse");
  EXPECT_EQ(mixed_batch_type(3), "compute");
  EXPECT_EQ(mixed_batch_type(4), "hash");
}

TEST(MenuBatch, BatchTaskDataIsValidJsonForEveryType) {
  for (std::string_view type : kBatchTypes) {
    const auto v = boost::json::parse(batch_task_data(type, 7));
    EXPECT_TRUE(v.is_object()) << type;
  }
  EXPECT_EQ(batch_task_data("hash", 7), R"({"text":"tarea 7"})");
}

TEST(MenuBatch, SendingLinesFollowTheSeed) {
  EXPECT_EQ(sending_lines(1), (std::vector<std::string>{"[CLIENTE] Enviando tarea 1..."}));
  EXPECT_EQ(sending_lines(5).size(), 5u);
  EXPECT_EQ(sending_lines(10), (std::vector<std::string>{"[CLIENTE] Enviando tarea 1...",
                                                         "[CLIENTE] Enviando tarea 2...", "..."}));
}

}  // namespace
}  // namespace sd::client::menu
