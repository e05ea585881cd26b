#pragma once

// A fresh directory under the system's temporary directory, removed with
// everything in it when the object goes. path() is empty when mkdtemp failed.

#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>

namespace junction::test_support {

class TempDir {
 public:
  explicit TempDir(std::string_view prefix = "junction-test") {
    std::string pattern =
        (std::filesystem::temp_directory_path() / (std::string(prefix) + "-XXXXXX")).string();
    if (mkdtemp(pattern.data()) != nullptr) path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::string url() const { return "file://" + path_.string(); }

 private:
  std::filesystem::path path_;
};

}  // namespace junction::test_support
