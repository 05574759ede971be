#pragma once
// One table of names per enum, the single place an enum value meets its text: parsing
// (command-line options, checkpoint metadata), printing, and the list of choices an error
// or a --help shows.
#include <array>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tensor/error.hpp"

namespace ddpm {

template <class Enum, std::size_t Count>
using NameTable = std::array<std::pair<Enum, const char*>, Count>;

template <class Enum, std::size_t Count>
std::vector<std::string> names_of(const NameTable<Enum, Count>& table) {
  std::vector<std::string> names;
  for (const auto& [value, name] : table) names.emplace_back(name);
  return names;
}

// The value named `text`; otherwise an error naming `what`, the text and the choices.
template <class Enum, std::size_t Count>
Enum parse_name(const NameTable<Enum, Count>& table, std::string_view text, const char* what) {
  for (const auto& [value, name] : table)
    if (text == name) return value;
  std::string choices;
  for (const auto& [value, name] : table) choices += std::string(choices.empty() ? "" : ", ") + name;
  fail(what, "unknown ", what, " '", std::string(text), "' (", choices, ")");
}

template <class Enum, std::size_t Count>
const char* name_of(const NameTable<Enum, Count>& table, Enum value) {
  for (const auto& [entry, name] : table)
    if (entry == value) return name;
  return "?";
}

}  // namespace ddpm
