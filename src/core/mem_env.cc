// The in-memory file system behind NewMemEnv() and FaultInjectionEnv: its namespace
// and its handles. The crash model and the injected faults are in
// fault_injection_env.cc.

#include "core/fault_injection_env.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <utility>

namespace junction {
namespace {

namespace fs = std::filesystem;

// The names from the root down to `path`; a relative "a/b" is read as "/a/b".
Result<std::vector<std::string>> Split(const fs::path& path, const std::string& context) {
  std::vector<std::string> names;
  for (const fs::path& part : path.lexically_normal()) {
    std::string name = part.string();
    if (name == "..") return ErrnoToStatus(EINVAL, context);
    if (!name.empty() && name != "/" && name != ".") names.push_back(std::move(name));
  }
  return names;
}

std::string Context(std::string_view what, const fs::path& path) {
  return std::string(what) + " " + path.string();
}

}  // namespace

FaultInjectionEnv::NodePtr FaultInjectionEnv::Node::MakeDir() {
  auto dir = std::make_shared<Node>();
  dir->is_dir = true;
  return dir;
}

void FaultInjectionEnv::Node::Apply(Entries& entries, const std::vector<Change>& changes) {
  for (const Change& change : changes) {
    if (change.node) {
      entries[change.name] = change.node;
    } else {
      entries.erase(change.name);
    }
  }
}

class FaultInjectionEnv::Writable final : public WritableFile {
 public:
  Writable(FaultInjectionEnv& env, NodePtr file, fs::path path, std::uint64_t generation)
      : env_(env), file_(std::move(file)), path_(std::move(path)), generation_(generation) {}
  ~Writable() override { Close().IgnoreError(); }

  Status AppendV(std::span<const std::span<const std::byte>> pieces) override {
    std::lock_guard lock(env_.mutex_);
    JUNCTION_RETURN_IF_ERROR(Usable("append"));
    Injected fault = env_.CountOp(FaultOp::kWrite);
    std::size_t total = 0;
    for (auto piece : pieces) total += piece.size();
    std::size_t keep = fault.error_number == 0 ? total : fault.partial_write ? total / 2 : 0;
    for (auto piece : pieces) {
      std::size_t n = std::min(keep, piece.size());
      file_->data.append(reinterpret_cast<const char*>(piece.data()), n);
      keep -= n;
    }
    if (fault.error_number == 0) return OkStatus();
    error_ = ErrnoToStatus(fault.error_number, Context("append", path_));
    return error_;
  }

  Status Sync() override {
    std::lock_guard lock(env_.mutex_);
    JUNCTION_RETURN_IF_ERROR(Usable("sync"));
    Injected fault = env_.CountOp(FaultOp::kSync);
    if (fault.error_number == 0) {
      file_->synced = file_->data.size();
      return OkStatus();
    }
    file_->lost_from = std::min(file_->lost_from, file_->synced);
    error_ = ErrnoToStatus(fault.error_number, Context("fdatasync", path_));
    return error_;
  }

  Status Close() override {
    if (closed_) return OkStatus();
    closed_ = true;
    std::lock_guard lock(env_.mutex_);
    return env_.CheckHandle(generation_, "close", path_);
  }

  std::uint64_t Size() const override {
    std::lock_guard lock(env_.mutex_);
    return file_->data.size();
  }

 private:
  // REQUIRES: env_.mutex_ held.
  Status Usable(std::string_view what) const {
    JUNCTION_RETURN_IF_ERROR(env_.CheckHandle(generation_, what, path_));
    if (closed_) return FailedPreconditionError(Context(what, path_) + ": file is closed");
    if (!error_.ok()) {
      return FailedPreconditionError(Context(what, path_) +
                                     ": handle broken by an earlier error: " + error_.message());
    }
    return OkStatus();
  }

  FaultInjectionEnv& env_;
  NodePtr file_;
  fs::path path_;
  std::uint64_t generation_;
  bool closed_ = false;
  Status error_;  // the first failed Append or Sync
};

class FaultInjectionEnv::Reader final : public RandomAccessFile {
 public:
  Reader(FaultInjectionEnv& env, NodePtr file, fs::path path, std::uint64_t generation)
      : env_(env), file_(std::move(file)), path_(std::move(path)), generation_(generation) {}

  Result<std::size_t> Read(std::uint64_t offset, std::span<std::byte> out) const override {
    std::lock_guard lock(env_.mutex_);
    JUNCTION_RETURN_IF_ERROR(env_.CheckHandle(generation_, "read", path_));
    const std::string& data = file_->data;
    if (offset >= data.size()) return std::size_t{0};
    std::size_t n = std::min<std::uint64_t>(out.size(), data.size() - offset);
    if (n > 0) std::memcpy(out.data(), data.data() + offset, n);  // out.data() may be null
    return n;
  }

  Result<std::uint64_t> Size() const override {
    std::lock_guard lock(env_.mutex_);
    JUNCTION_RETURN_IF_ERROR(env_.CheckHandle(generation_, "stat", path_));
    return std::uint64_t{file_->data.size()};
  }

 private:
  FaultInjectionEnv& env_;
  NodePtr file_;
  fs::path path_;
  std::uint64_t generation_;
};

class FaultInjectionEnv::Lock final : public FileLock {
 public:
  Lock(FaultInjectionEnv& env, std::string key, std::uint64_t generation)
      : env_(env), key_(std::move(key)), generation_(generation) {}
  ~Lock() override {
    std::lock_guard lock(env_.mutex_);
    if (env_.generation_ == generation_) env_.locks_.erase(key_);  // a crash freed it already
  }

 private:
  FaultInjectionEnv& env_;
  std::string key_;
  std::uint64_t generation_;
};

FaultInjectionEnv::FaultInjectionEnv() : root_(Node::MakeDir()) {}
FaultInjectionEnv::~FaultInjectionEnv() = default;

Result<FaultInjectionEnv::NodePtr> FaultInjectionEnv::Lookup(const fs::path& path,
                                                             const std::string& context) const {
  JUNCTION_ASSIGN_OR_RETURN(std::vector<std::string> names, Split(path, context));
  NodePtr node = root_;
  for (const std::string& name : names) {
    if (!node->is_dir) return ErrnoToStatus(ENOTDIR, context);
    auto it = node->entries.find(name);
    if (it == node->entries.end()) return ErrnoToStatus(ENOENT, context);
    node = it->second;
  }
  return node;
}

Result<FaultInjectionEnv::Resolved> FaultInjectionEnv::LookupParent(
    const fs::path& path, const std::string& context) const {
  JUNCTION_ASSIGN_OR_RETURN(std::vector<std::string> names, Split(path, context));
  if (names.empty()) return ErrnoToStatus(EINVAL, context);  // the root has no parent
  fs::path parent = "/";
  for (std::size_t i = 0; i + 1 < names.size(); ++i) parent /= names[i];
  JUNCTION_ASSIGN_OR_RETURN(NodePtr dir, Lookup(parent, context));
  if (!dir->is_dir) return ErrnoToStatus(ENOTDIR, context);
  return Resolved{std::move(dir), std::move(names.back())};
}

void FaultInjectionEnv::Record(Node& dir, std::vector<Change> changes) {
  Node::Apply(dir.entries, changes);
  dir.pending.push_back(std::move(changes));
}

bool FaultInjectionEnv::Contains(const Node& dir, const Node* node) {
  if (&dir == node) return true;
  return std::any_of(dir.entries.begin(), dir.entries.end(), [&](const auto& entry) {
    return entry.second->is_dir && Contains(*entry.second, node);
  });
}

Result<std::unique_ptr<WritableFile>> FaultInjectionEnv::OpenWritable(const fs::path& path,
                                                                      bool truncate) {
  std::string context = Context("open", path);
  JUNCTION_RETURN_IF_ERROR(InjectedError(FaultOp::kAny, context));
  JUNCTION_ASSIGN_OR_RETURN(Resolved parent, LookupParent(path, context));
  NodePtr file;
  if (auto it = parent.dir->entries.find(parent.name); it != parent.dir->entries.end()) {
    file = it->second;
    if (file->is_dir) return ErrnoToStatus(EISDIR, context);
    if (truncate) *file = Node();  // in place, like O_TRUNC: open readers see it empty
  } else {
    file = std::make_shared<Node>();
    Record(*parent.dir, {{parent.name, file}});
  }
  return std::unique_ptr<WritableFile>(std::make_unique<Writable>(*this, file, path, generation_));
}

Result<std::unique_ptr<WritableFile>> FaultInjectionEnv::NewWritableFile(const fs::path& path) {
  std::lock_guard lock(mutex_);
  return OpenWritable(path, /*truncate=*/true);
}

Result<std::unique_ptr<WritableFile>> FaultInjectionEnv::NewAppendableFile(const fs::path& path) {
  std::lock_guard lock(mutex_);
  return OpenWritable(path, /*truncate=*/false);
}

Result<std::unique_ptr<RandomAccessFile>> FaultInjectionEnv::NewRandomAccessFile(
    const fs::path& path) {
  std::lock_guard lock(mutex_);
  std::string context = Context("open", path);
  JUNCTION_ASSIGN_OR_RETURN(NodePtr file, Lookup(path, context));
  if (file->is_dir) return ErrnoToStatus(EISDIR, context);
  return std::unique_ptr<RandomAccessFile>(
      std::make_unique<Reader>(*this, std::move(file), path, generation_));
}

bool FaultInjectionEnv::FileExists(const fs::path& path) {
  std::lock_guard lock(mutex_);
  return Lookup(path, "stat").ok();
}

Result<std::uint64_t> FaultInjectionEnv::GetFileSize(const fs::path& path) {
  std::lock_guard lock(mutex_);
  std::string context = Context("stat", path);
  JUNCTION_ASSIGN_OR_RETURN(NodePtr file, Lookup(path, context));
  if (file->is_dir) return ErrnoToStatus(EISDIR, context);
  return std::uint64_t{file->data.size()};
}

Result<std::vector<std::string>> FaultInjectionEnv::GetChildren(const fs::path& dir) {
  std::lock_guard lock(mutex_);
  std::string context = Context("opendir", dir);
  JUNCTION_ASSIGN_OR_RETURN(NodePtr node, Lookup(dir, context));
  if (!node->is_dir) return ErrnoToStatus(ENOTDIR, context);
  std::vector<std::string> names;
  for (const auto& entry : node->entries) names.push_back(entry.first);
  return names;
}

Status FaultInjectionEnv::CreateDir(const fs::path& path) {
  std::lock_guard lock(mutex_);
  std::string context = Context("mkdir", path);
  JUNCTION_RETURN_IF_ERROR(InjectedError(FaultOp::kAny, context));
  JUNCTION_ASSIGN_OR_RETURN(Resolved parent, LookupParent(path, context));
  if (parent.dir->entries.contains(parent.name)) return ErrnoToStatus(EEXIST, context);
  Record(*parent.dir, {{parent.name, Node::MakeDir()}});
  return OkStatus();
}

Status FaultInjectionEnv::CreateDirs(const fs::path& path) {
  std::lock_guard lock(mutex_);
  std::string context = Context("mkdir", path);
  JUNCTION_RETURN_IF_ERROR(InjectedError(FaultOp::kAny, context));
  JUNCTION_ASSIGN_OR_RETURN(std::vector<std::string> names, Split(path, context));
  NodePtr dir = root_;
  for (const std::string& name : names) {
    auto it = dir->entries.find(name);
    if (it == dir->entries.end()) {
      Record(*dir, {{name, Node::MakeDir()}});
      it = dir->entries.find(name);
    }
    if (!it->second->is_dir) return ErrnoToStatus(ENOTDIR, context);
    dir = it->second;
  }
  return OkStatus();
}

Status FaultInjectionEnv::RemoveFile(const fs::path& path) {
  std::lock_guard lock(mutex_);
  std::string context = Context("unlink", path);
  JUNCTION_RETURN_IF_ERROR(InjectedError(FaultOp::kAny, context));
  JUNCTION_ASSIGN_OR_RETURN(Resolved parent, LookupParent(path, context));
  auto it = parent.dir->entries.find(parent.name);
  if (it == parent.dir->entries.end()) return ErrnoToStatus(ENOENT, context);
  if (it->second->is_dir) return ErrnoToStatus(EISDIR, context);
  Record(*parent.dir, {{parent.name, nullptr}});
  return OkStatus();
}

Status FaultInjectionEnv::RemoveDir(const fs::path& path) {
  std::lock_guard lock(mutex_);
  std::string context = Context("rmdir", path);
  JUNCTION_RETURN_IF_ERROR(InjectedError(FaultOp::kAny, context));
  JUNCTION_ASSIGN_OR_RETURN(Resolved parent, LookupParent(path, context));
  auto it = parent.dir->entries.find(parent.name);
  if (it == parent.dir->entries.end()) return ErrnoToStatus(ENOENT, context);
  if (!it->second->is_dir) return ErrnoToStatus(ENOTDIR, context);
  if (!it->second->entries.empty()) return ErrnoToStatus(ENOTEMPTY, context);
  Record(*parent.dir, {{parent.name, nullptr}});
  return OkStatus();
}

Status FaultInjectionEnv::RenameFile(const fs::path& from, const fs::path& to) {
  std::lock_guard lock(mutex_);
  std::string context = "rename " + from.string() + " to " + to.string();
  JUNCTION_RETURN_IF_ERROR(InjectedError(FaultOp::kAny, context));
  JUNCTION_ASSIGN_OR_RETURN(Resolved source, LookupParent(from, context));
  JUNCTION_ASSIGN_OR_RETURN(Resolved target, LookupParent(to, context));
  auto it = source.dir->entries.find(source.name);
  if (it == source.dir->entries.end()) return ErrnoToStatus(ENOENT, context);
  NodePtr node = it->second;
  if (source.dir == target.dir && source.name == target.name) return OkStatus();
  if (auto old = target.dir->entries.find(target.name); old != target.dir->entries.end()) {
    if (node->is_dir && !old->second->is_dir) return ErrnoToStatus(ENOTDIR, context);
    if (!node->is_dir && old->second->is_dir) return ErrnoToStatus(EISDIR, context);
    if (!old->second->entries.empty()) return ErrnoToStatus(ENOTEMPTY, context);
  }
  if (node->is_dir && Contains(*node, target.dir.get())) return ErrnoToStatus(EINVAL, context);
  if (source.dir == target.dir) {
    Record(*source.dir, {{source.name, nullptr}, {target.name, node}});
  } else {
    Record(*source.dir, {{source.name, nullptr}});
    Record(*target.dir, {{target.name, node}});
  }
  return OkStatus();
}

Status FaultInjectionEnv::Truncate(const fs::path& path, std::uint64_t size) {
  std::lock_guard lock(mutex_);
  std::string context = Context("truncate", path);
  JUNCTION_RETURN_IF_ERROR(InjectedError(FaultOp::kAny, context));
  JUNCTION_ASSIGN_OR_RETURN(NodePtr file, Lookup(path, context));
  if (file->is_dir) return ErrnoToStatus(EISDIR, context);
  file->data.resize(size, '\0');
  file->synced = size;
  if (size <= file->lost_from) file->lost_from = Node::kNoLoss;
  return OkStatus();
}

Status FaultInjectionEnv::SyncDir(const fs::path& dir) {
  std::lock_guard lock(mutex_);
  std::string context = Context("fsync dir", dir);
  JUNCTION_RETURN_IF_ERROR(InjectedError(FaultOp::kSync, context));
  JUNCTION_ASSIGN_OR_RETURN(NodePtr node, Lookup(dir, context));
  if (!node->is_dir) return ErrnoToStatus(ENOTDIR, context);
  node->durable = node->entries;
  node->pending.clear();
  return OkStatus();
}

Result<std::unique_ptr<FileLock>> FaultInjectionEnv::LockFile(const fs::path& path) {
  std::lock_guard lock(mutex_);
  std::string context = Context("lock", path);
  JUNCTION_ASSIGN_OR_RETURN(std::vector<std::string> names, Split(path, context));
  JUNCTION_ASSIGN_OR_RETURN(Resolved parent, LookupParent(path, context));
  if (auto it = parent.dir->entries.find(parent.name); it == parent.dir->entries.end()) {
    Record(*parent.dir, {{parent.name, std::make_shared<Node>()}});
  } else if (it->second->is_dir) {
    return ErrnoToStatus(EISDIR, context);
  }
  std::string key;
  for (const std::string& name : names) key += "/" + name;
  if (!locks_.insert(key).second) {
    return UnavailableError(context + ": already held by another owner");
  }
  return std::unique_ptr<FileLock>(std::make_unique<Lock>(*this, std::move(key), generation_));
}

// The in-memory Env is the fault-injecting one that nobody crashes or fails: without
// SimulateCrash its durability bookkeeping can never be observed, so every write is as
// good as durable. One in-memory file system to keep correct instead of two.
std::unique_ptr<Env> NewMemEnv() { return std::make_unique<FaultInjectionEnv>(); }

}  // namespace junction
