#include "tasks/sha256.hpp"

#include <openssl/evp.h>

#include <stdexcept>

namespace sd::tasks {
namespace {

// Fetched once per process: an implicit fetch (EVP_sha256()) would look the
// algorithm up again on every EVP_DigestInit_ex2. Never freed: it lives as long
// as the process, like OpenSSL's own default provider.
const EVP_MD* sha256_md() {
  static EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  if (md == nullptr) throw std::runtime_error("OpenSSL cannot provide SHA-256");
  return md;
}

}  // namespace

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  if (ctx_ == nullptr) throw std::runtime_error("EVP_MD_CTX_new failed");
  try {
    (void)sha256_md();
  } catch (...) {
    EVP_MD_CTX_free(ctx_);
    throw;
  }
}

Sha256::~Sha256() { EVP_MD_CTX_free(ctx_); }

Sha256Digest Sha256::digest(std::span<const unsigned char> bytes) {
  Sha256Digest out{};
  unsigned int size = 0;
  if (EVP_DigestInit_ex2(ctx_, sha256_md(), nullptr) != 1 ||
      EVP_DigestUpdate(ctx_, bytes.data(), bytes.size()) != 1 ||
      EVP_DigestFinal_ex(ctx_, out.data(), &size) != 1 || size != out.size()) {
    throw std::runtime_error("SHA-256 digest failed");
  }
  return out;
}

Sha256Digest Sha256::digest(std::string_view text) {
  // Viewing a char buffer as unsigned char is allowed by the aliasing rules.
  return digest(std::span(reinterpret_cast<const unsigned char*>(text.data()), text.size()));
}

std::string to_hex(std::span<const unsigned char> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex(bytes.size() * 2, '\0');
  std::size_t i = 0;
  for (const unsigned char byte : bytes) {
    hex[i++] = kDigits[byte >> 4];
    hex[i++] = kDigits[byte & 0x0f];
  }
  return hex;
}

}  // namespace sd::tasks
