// Helpers shared by the fuzz targets (fuzz/): turning libFuzzer's bytes into what a parser
// reads. Each target defines LLVMFuzzerTestOneInput; it is linked either with libFuzzer
// (`make fuzz`, clang) or with replay_main.cc (a ctest that replays the seed corpus and the
// regressions with any compiler).
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

namespace cohort::fuzz {

// A file holding `data` for readers that take a path (checkpoint, IDX). One per process,
// rewritten for every input, in /dev/shm when it exists (no disk I/O per execution).
inline const std::string& write_input_file(const uint8_t* data, size_t size,
                                           const char* suffix = "") {
  static const std::string path = [&] {
    const char* dir = ::access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    return std::string(dir) + "/cohort_fuzz_" + std::to_string(::getpid());
  }();
  static std::string with_suffix;
  with_suffix = path + suffix;
  std::FILE* f = std::fopen(with_suffix.c_str(), "wb");
  if (f == nullptr) __builtin_trap();
  if (size > 0 && std::fwrite(data, 1, size, f) != size) __builtin_trap();
  std::fclose(f);
  return with_suffix;
}

// Splits the input into frames: a little-endian uint16 length, then that many bytes (the last
// frame takes what is left). Used to feed several protobuf messages from one input.
class Frames {
 public:
  Frames(const uint8_t* data, size_t size) : p_(data), end_(data + size) {}
  bool next(std::string* out) {
    if (p_ >= end_) return false;
    size_t n = static_cast<size_t>(end_ - p_);
    if (n >= 2) {
      const size_t len = static_cast<size_t>(p_[0]) | (static_cast<size_t>(p_[1]) << 8);
      p_ += 2;
      n = std::min(len, static_cast<size_t>(end_ - p_));
    } else {
      p_ += n;
      n = 0;
    }
    out->assign(reinterpret_cast<const char*>(p_), n);
    p_ += n;
    return true;
  }

 private:
  const uint8_t* p_;
  const uint8_t* end_;
};

}  // namespace cohort::fuzz
