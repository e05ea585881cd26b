// FaultInjectionEnv's crash model and injected faults. The in-memory file system it
// works on (namespace operations, handles) is in mem_env.cc.

#include "core/fault_injection_env.h"

#include <algorithm>
#include <utility>

namespace junction {

FaultInjectionEnv::Injected FaultInjectionEnv::CountOp(FaultOp kind) {
  ++mutations_;
  if (kind == FaultOp::kWrite) ++writes_;
  if (kind == FaultOp::kSync) ++syncs_;
  if (!fault_ || (fault_->op != FaultOp::kAny && fault_->op != kind)) return {};
  if (!fault_->fired && --fault_->countdown > 0) return {};
  Injected injected{fault_->error_number, fault_->options.partial_write};
  fault_->fired = true;
  if (!fault_->options.sticky) fault_.reset();
  return injected;
}

Status FaultInjectionEnv::InjectedError(FaultOp kind, const std::string& context) {
  Injected fault = CountOp(kind);
  if (fault.error_number == 0) return OkStatus();
  return ErrnoToStatus(fault.error_number, context);
}

Status FaultInjectionEnv::CheckHandle(std::uint64_t generation, std::string_view what,
                                      const std::filesystem::path& path) const {
  if (generation == generation_) return OkStatus();
  return FailedPreconditionError(std::string(what) + " " + path.string() +
                                 ": handle opened before simulated crash");
}

void FaultInjectionEnv::SimulateCrash(CrashMode mode, std::uint64_t seed) {
  std::lock_guard lock(mutex_);
  std::mt19937_64 rng(seed);  // exactly specified by the standard: same seed, same crash
  std::set<const Node*> seen = {root_.get()};
  RecoverDir(*root_, mode, rng, seen);
  ++generation_;
  locks_.clear();
}

void FaultInjectionEnv::RecoverDir(Node& dir, CrashMode mode, std::mt19937_64& rng,
                                   std::set<const Node*>& seen) {
  std::size_t kept = dir.pending.size();
  if (mode == CrashMode::kDropUnsynced) {
    kept = 0;
  } else if (mode != CrashMode::kKeepUnsynced) {
    kept = rng() % (dir.pending.size() + 1);
  }
  Node::Entries survivors = std::move(dir.durable);
  for (std::size_t i = 0; i < kept; ++i) Node::Apply(survivors, dir.pending[i]);
  dir.pending.clear();
  dir.entries.clear();
  for (auto& [name, child] : survivors) {
    NodePtr node = child;
    if (!seen.insert(node.get()).second) {
      // Reachable twice (a rename across directories survived on both sides): a file
      // keeps both names as separate copies, a directory only its first name.
      if (node->is_dir) continue;
      node = std::make_shared<Node>(*node);
    }
    if (node->is_dir) {
      RecoverDir(*node, mode, rng, seen);
    } else {
      RecoverFile(*node, mode, rng);
    }
    dir.entries.emplace(name, std::move(node));
  }
  dir.durable = dir.entries;
}

void FaultInjectionEnv::RecoverFile(Node& file, CrashMode mode, std::mt19937_64& rng) {
  std::uint64_t size = file.data.size();
  std::uint64_t durable = std::min({file.synced, file.lost_from, size});
  std::uint64_t keep = size;
  if (mode == CrashMode::kDropUnsynced) {
    keep = durable;
  } else if (mode != CrashMode::kKeepUnsynced) {
    keep = durable + rng() % (size - durable + 1);
  }
  file.data.resize(keep);
  if (mode == CrashMode::kTearAndGarbleUnsynced && keep > durable) {
    std::uint64_t garbled = 1 + rng() % std::min<std::uint64_t>(keep - durable, 8);
    for (std::uint64_t i = keep - garbled; i < keep; ++i) {
      file.data[i] = static_cast<char>(file.data[i] ^ static_cast<char>(1 + rng() % 255));
    }
  }
  file.synced = keep;
  file.lost_from = Node::kNoLoss;
}

void FaultInjectionEnv::FailNth(FaultOp op, int nth, int error_number, FaultOptions options) {
  JUNCTION_CHECK(nth >= 1) << "FailNth counts from 1, got " << nth;
  std::lock_guard lock(mutex_);
  fault_ = Armed{op, nth, error_number, options};
}

void FaultInjectionEnv::ClearFaults() {
  std::lock_guard lock(mutex_);
  fault_.reset();
}

std::uint64_t FaultInjectionEnv::writes() const {
  std::lock_guard lock(mutex_);
  return writes_;
}

std::uint64_t FaultInjectionEnv::syncs() const {
  std::lock_guard lock(mutex_);
  return syncs_;
}

std::uint64_t FaultInjectionEnv::mutations() const {
  std::lock_guard lock(mutex_);
  return mutations_;
}

}  // namespace junction
