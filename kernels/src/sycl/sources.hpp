// The kernel sources the DPC++ kernel compiler gets at run time, embedded in the module by CMake
// (cmake/embed_sources.cmake) from the very files the host build compiles.
#pragma once

#include <cstddef>

namespace v2x::rtc {

// A source file: its name (as #include spells it) and its text, byte for byte.
struct SourceFile {
  const char* name;
  const char* text;
};

extern const SourceFile kKernelSource;    // src/sycl/device_kernels.cpp
extern const SourceFile kIncludeFiles[];  // src/bodies/*.hpp, include/v2x_sycl.hpp
extern const size_t kNumIncludeFiles;

}  // namespace v2x::rtc
