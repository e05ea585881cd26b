#include "bench/counting_env.h"

#include <span>
#include <utility>

namespace junction::bench {
namespace {

constexpr auto kRelaxed = std::memory_order_relaxed;

class CountingWritableFile final : public WritableFile {
 public:
  CountingWritableFile(std::unique_ptr<WritableFile> base, bool is_segment,
                       CountingEnv::Counters& counters)
      : base_(std::move(base)), is_segment_(is_segment), counters_(counters) {}

  Status AppendV(std::span<const std::span<const std::byte>> pieces) override {
    if (is_segment_) {
      std::uint64_t bytes = 0;
      for (auto piece : pieces) bytes += piece.size();
      counters_.segment_writes.fetch_add(1, kRelaxed);
      counters_.segment_bytes.fetch_add(bytes, kRelaxed);
    }
    return base_->AppendV(pieces);
  }
  Status Sync() override {
    (is_segment_ ? counters_.segment_syncs : counters_.other_syncs).fetch_add(1, kRelaxed);
    return base_->Sync();
  }
  Status Close() override { return base_->Close(); }
  std::uint64_t Size() const override { return base_->Size(); }

 private:
  std::unique_ptr<WritableFile> base_;
  bool is_segment_;
  CountingEnv::Counters& counters_;
};

}  // namespace

IoCounters IoCounters::Since(const IoCounters& earlier) const {
  return {segment_writes - earlier.segment_writes, segment_bytes - earlier.segment_bytes,
          segment_syncs - earlier.segment_syncs, other_syncs - earlier.other_syncs};
}

IoCounters CountingEnv::Snapshot() const {
  return {counters_.segment_writes.load(kRelaxed), counters_.segment_bytes.load(kRelaxed),
          counters_.segment_syncs.load(kRelaxed), counters_.other_syncs.load(kRelaxed)};
}

Result<std::unique_ptr<WritableFile>> CountingEnv::NewWritableFile(
    const std::filesystem::path& path) {
  JUNCTION_ASSIGN_OR_RETURN(std::unique_ptr<WritableFile> file, target().NewWritableFile(path));
  return Wrap(std::move(file), path);
}

Result<std::unique_ptr<WritableFile>> CountingEnv::NewAppendableFile(
    const std::filesystem::path& path) {
  JUNCTION_ASSIGN_OR_RETURN(std::unique_ptr<WritableFile> file, target().NewAppendableFile(path));
  return Wrap(std::move(file), path);
}

Status CountingEnv::SyncDir(const std::filesystem::path& dir) {
  counters_.other_syncs.fetch_add(1, kRelaxed);
  return target().SyncDir(dir);
}

std::unique_ptr<WritableFile> CountingEnv::Wrap(std::unique_ptr<WritableFile> file,
                                                const std::filesystem::path& path) {
  return std::make_unique<CountingWritableFile>(std::move(file), path.extension() == ".log",
                                                counters_);
}

}  // namespace junction::bench
