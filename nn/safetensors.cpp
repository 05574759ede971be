#include "nn/safetensors.hpp"

#include "nn/atomic_file.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

namespace ddpm {
namespace {

[[noreturn]] void fail_file(const std::string& source, const std::string& problem) {
  throw SafetensorsError(source + ": " + problem);
}

const char* safetensors_dtype(DType dtype) {
  switch (dtype) {
    case DType::Float32: return "F32";
    case DType::Float64: return "F64";
    case DType::Int64: return "I64";
  }
  return "?";
}

bool parse_dtype(const std::string& name, DType& dtype) {
  if (name == "F32") dtype = DType::Float32;
  else if (name == "F64") dtype = DType::Float64;
  else if (name == "I64") dtype = DType::Int64;
  else return false;
  return true;
}

struct Entry {
  std::string name;
  DType dtype;
  Shape shape;
  std::uint64_t begin, end;
};

}  // namespace

const Tensor* SafetensorsContents::find(const std::string& name) const {
  for (const auto& [key, tensor] : tensors)
    if (key == name) return &tensor;
  return nullptr;
}

SafetensorsContents parse_safetensors(std::span<const std::uint8_t> bytes, const std::string& source) {
  if (bytes.size() < 8) fail_file(source, "file is " + std::to_string(bytes.size()) + " bytes, too short for the 8-byte header length");
  std::uint64_t header_length = 0;
  for (int i = 7; i >= 0; --i) header_length = header_length << 8 | bytes[i];
  if (header_length > bytes.size() - 8)
    fail_file(source, "header length " + std::to_string(header_length) + " exceeds the " +
                          std::to_string(bytes.size() - 8) + " bytes after it (truncated or corrupt file)");
  const std::string header_text(reinterpret_cast<const char*>(bytes.data() + 8), header_length);
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(header_text);
  } catch (const nlohmann::json::exception& error) {
    fail_file(source, std::string("header is not valid JSON: ") + error.what());
  }
  if (!header.is_object()) fail_file(source, "header is not a JSON object");

  const std::uint64_t data_size = bytes.size() - 8 - header_length;
  const std::uint8_t* data = bytes.data() + 8 + header_length;
  SafetensorsContents contents;
  std::vector<Entry> entries;
  for (const auto& [name, field] : header.items()) {
    if (name == "__metadata__") {
      if (!field.is_object()) fail_file(source, "__metadata__ is not an object");
      for (const auto& [key, value] : field.items()) {
        if (!value.is_string()) fail_file(source, "__metadata__ value of '" + key + "' is not a string");
        contents.metadata[key] = value.get<std::string>();
      }
      continue;
    }
    const std::string where = "tensor '" + name + "'";
    if (!field.is_object()) fail_file(source, where + ": entry is not an object");
    if (!field.contains("dtype") || !field["dtype"].is_string()) fail_file(source, where + ": missing or non-string dtype");
    Entry entry{name, DType::Float32, {}, 0, 0};
    if (!parse_dtype(field["dtype"].get<std::string>(), entry.dtype))
      fail_file(source, where + ": unsupported dtype '" + field["dtype"].get<std::string>() + "' (F32, F64 and I64 are)");
    if (!field.contains("shape") || !field["shape"].is_array()) fail_file(source, where + ": missing shape");
    std::uint64_t count = 1;
    for (const auto& size : field["shape"]) {
      if (!size.is_number_unsigned()) fail_file(source, where + ": shape holds a value that is not a non-negative integer");
      const auto value = size.get<std::uint64_t>();
      if (value > (std::uint64_t{1} << 40) || (value && count > (std::uint64_t{1} << 40) / value))
        fail_file(source, where + ": shape is implausibly large");
      count *= value;
      entry.shape.push_back(static_cast<std::int64_t>(value));
    }
    if (entry.shape.size() > 16) fail_file(source, where + ": rank " + std::to_string(entry.shape.size()) + " exceeds 16");
    const auto& offsets = field.contains("data_offsets") ? field["data_offsets"] : nlohmann::json();
    if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() || !offsets[1].is_number_unsigned())
      fail_file(source, where + ": data_offsets must be two non-negative integers");
    entry.begin = offsets[0].get<std::uint64_t>();
    entry.end = offsets[1].get<std::uint64_t>();
    if (entry.begin > entry.end || entry.end > data_size)
      fail_file(source, where + ": data_offsets [" + std::to_string(entry.begin) + ", " + std::to_string(entry.end) +
                            ") fall outside the " + std::to_string(data_size) + "-byte data section");
    const std::uint64_t expected = count * element_size(entry.dtype);
    if (entry.end - entry.begin != expected)
      fail_file(source, where + ": shape " + shape_string(entry.shape) + " of " + safetensors_dtype(entry.dtype) + " needs " +
                            std::to_string(expected) + " bytes, data_offsets span " + std::to_string(entry.end - entry.begin));
    entries.push_back(std::move(entry));
  }
  // The spans must tile the data section exactly: no overlap, no gap, nothing left over.
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  std::uint64_t position = 0;
  for (const Entry& entry : entries) {
    if (entry.begin != position)
      fail_file(source, "tensor '" + entry.name + "' starts at byte " + std::to_string(entry.begin) + " but the previous data ends at " +
                            std::to_string(position) + (entry.begin < position ? " (overlap)" : " (gap)"));
    position = entry.end;
  }
  if (position != data_size)
    fail_file(source, "tensors cover " + std::to_string(position) + " of the " + std::to_string(data_size) + " data bytes");
  for (const Entry& entry : entries) {
    Tensor tensor = Tensor::empty(entry.shape, entry.dtype);
    if (entry.end > entry.begin) std::memcpy(tensor.raw_data(), data + entry.begin, entry.end - entry.begin);
    contents.tensors.emplace_back(entry.name, std::move(tensor));
  }
  return contents;
}

SafetensorsContents read_safetensors(const std::string& path) {
  // A directory opens and reports a size of -1; a FIFO blocks the open until a writer
  // comes: only regular files are read.
  struct stat status {};
  if (::stat(path.c_str(), &status) != 0) throw SafetensorsError(path + ": cannot open: " + std::strerror(errno));
  if (!S_ISREG(status.st_mode)) throw SafetensorsError(path + ": not a regular file");
  std::ifstream file(path, std::ios::binary | std::ios::ate);
  if (!file) throw SafetensorsError(path + ": cannot open: " + std::strerror(errno));
  const std::streamoff size = file.tellg();
  if (size < 0) throw SafetensorsError(path + ": cannot determine its size");
  file.seekg(0);
  std::vector<std::uint8_t> bytes(static_cast<std::size_t>(size));
  if (size > 0 && !file.read(reinterpret_cast<char*>(bytes.data()), size)) throw SafetensorsError(path + ": read failed");
  return parse_safetensors(bytes, path);
}

std::vector<std::uint8_t> serialize_safetensors(const std::vector<std::pair<std::string, Tensor>>& tensors,
                                                const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::uint64_t offset = 0;
  std::vector<Tensor> contiguous;
  for (const auto& [name, tensor] : tensors) {
    if (name == "__metadata__" || name.empty()) throw SafetensorsError("tensor name '" + name + "' is reserved or empty");
    if (header.contains(name)) throw SafetensorsError("tensor name '" + name + "' appears twice");
    contiguous.push_back(tensor.contiguous());
    const std::uint64_t bytes = static_cast<std::uint64_t>(tensor.numel()) * element_size(tensor.dtype());
    header[name] = {{"dtype", safetensors_dtype(tensor.dtype())}, {"shape", tensor.shape()}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // align the data to 8 bytes
  std::vector<std::uint8_t> out(8 + text.size() + offset);
  for (int i = 0; i < 8; ++i) out[i] = static_cast<std::uint8_t>(static_cast<std::uint64_t>(text.size()) >> (8 * i));
  std::memcpy(out.data() + 8, text.data(), text.size());
  std::uint8_t* data = out.data() + 8 + text.size();
  for (const Tensor& tensor : contiguous) {
    const std::size_t bytes = static_cast<std::size_t>(tensor.numel()) * element_size(tensor.dtype());
    if (bytes) std::memcpy(data, tensor.raw_data(), bytes);  // this machine is little-endian, as the format
    data += bytes;
  }
  return out;
}

void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  const std::vector<std::uint8_t> bytes = serialize_safetensors(tensors, metadata);
  try {
    write_file_atomically(path, bytes);
  } catch (const FileWriteError& error) {
    throw SafetensorsError(error.what());
  }
}

}  // namespace ddpm
