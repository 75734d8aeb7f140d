#include "tasks/sha256.hpp"

#include <gtest/gtest.h>

#include <array>
#include <string>

namespace sd::tasks {
namespace {

std::string sha256_hex(std::string_view text) {
  Sha256 sha;
  return to_hex(sha.digest(text));
}

TEST(Sha256, EmptyStringVector) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(Sha256, AbcVector) {
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Sha256, TwoBlockVector) {
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(Sha256, MillionAVector) {
  EXPECT_EQ(sha256_hex(std::string(1'000'000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, ReusingOneObjectGivesTheSameDigests) {
  Sha256 sha;
  const auto first = sha.digest(std::string_view("abc"));
  (void)sha.digest(std::string_view("something else in between"));
  EXPECT_EQ(sha.digest(std::string_view("abc")), first);
  EXPECT_EQ(to_hex(sha.digest(std::string_view(""))),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(Sha256, HashesRawBytesIncludingZeros) {
  Sha256 sha;
  const std::array<unsigned char, 32> zeros{};
  // python3 -c 'import hashlib; print(hashlib.sha256(bytes(32)).hexdigest())'
  EXPECT_EQ(to_hex(sha.digest(zeros)),
            "66687aadf862bd776c8fc18b8e9f8e20089714856ee233b3902a591d0d5f2925");
}

TEST(Sha256, ToHexIsLowercaseTwoDigitsPerByte) {
  const std::array<unsigned char, 5> bytes{0x00, 0x0f, 0xa0, 0xf0, 0xff};
  EXPECT_EQ(to_hex(bytes), "000fa0f0ff");
  EXPECT_EQ(to_hex(std::span<const unsigned char>{}), "");
}

}  // namespace
}  // namespace sd::tasks
