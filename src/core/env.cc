#include "core/env.h"

#include <array>
#include <utility>

namespace junction {

Status WritableFile::Append(std::span<const std::byte> data) {
  std::array<std::span<const std::byte>, 1> pieces = {data};
  return AppendV(pieces);
}

Status WritableFile::Append(std::string_view data) {
  return Append(std::as_bytes(std::span(data.data(), data.size())));
}

Result<std::string> ReadFileToString(Env& env, const std::filesystem::path& path) {
  constexpr std::size_t kChunk = 64 * 1024;
  JUNCTION_ASSIGN_OR_RETURN(std::unique_ptr<RandomAccessFile> file, env.NewRandomAccessFile(path));
  std::string contents;
  std::size_t size = 0;
  while (true) {
    contents.resize(size + kChunk);
    auto tail = std::as_writable_bytes(std::span(contents).subspan(size));
    JUNCTION_ASSIGN_OR_RETURN(std::size_t n, file->Read(size, tail));
    if (n == 0) break;
    size += n;
  }
  contents.resize(size);
  return contents;
}

namespace {

Status WriteAndSync(Env& env, const std::filesystem::path& path, std::string_view contents) {
  JUNCTION_ASSIGN_OR_RETURN(std::unique_ptr<WritableFile> file, env.NewWritableFile(path));
  JUNCTION_RETURN_IF_ERROR(file->Append(contents));
  JUNCTION_RETURN_IF_ERROR(file->Sync());
  return file->Close();
}

}  // namespace

Status WriteFileAtomically(Env& env, const std::filesystem::path& path, std::string_view contents) {
  std::filesystem::path temp = path;
  temp += ".tmp";
  Status status = WriteAndSync(env, temp, contents);
  if (status.ok()) status = env.RenameFile(temp, path);
  if (!status.ok()) {
    env.RemoveFile(temp).IgnoreError();  // best effort; a leftover temp file is harmless
    return status;
  }
  std::filesystem::path parent = path.parent_path();
  return env.SyncDir(parent.empty() ? std::filesystem::path(".") : parent);
}

Status CreateDirsDurably(Env& env, const std::filesystem::path& path) {
  std::filesystem::path at;
  for (const auto& part : path) {
    std::filesystem::path parent = at;
    at /= part;
    if (parent.empty() || env.FileExists(at)) continue;
    if (Status s = env.CreateDir(at); !s.ok() && s.code() != StatusCode::kAlreadyExists) return s;
    JUNCTION_RETURN_IF_ERROR(env.SyncDir(parent));
  }
  return OkStatus();
}

}  // namespace junction
