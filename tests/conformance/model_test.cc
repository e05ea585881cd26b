// Model-based randomized test of the embedded broker: seeded random sequences
// of publish (some delayed, some republished ids), join, leave, poll, ack,
// nack, in-progress, clock advances, seek, describe and restart run against a
// Bus on a ManualClock (file:// with restarts, mostly on an in-memory Env and
// a few seeds on a temporary directory; mem:// without restarts) and against
// the reference model in broker_model.h, which checks every step. Each
// sequence ends with a drain (time passes, everything is acked) and the final
// accounting: every message acked or in its group's dead-letter topic, and,
// for file://, nothing comes back after one more restart.
//
// A divergence names the seed and the op and shows the last ops. Replay one
// seed with a step-by-step trace (and real time per op) on stderr:
//   JUNCTION_MODEL_SEED=1234 build/debug/tests/conformance/broker_model_test
//       --gtest_filter=BrokerModel.FileBusWithRestarts
// JUNCTION_MODEL_SEEDS=n, JUNCTION_MODEL_STEPS=n and JUNCTION_MODEL_SEED_BASE=n
// change the number of seeds, the length of each sequence and the seeds'
// offset (longer hunts).

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "junction/log.h"
#include "model_runner.h"

namespace junction::model_test {
namespace {

constexpr Suite kFileSuite{Where::kFileOnMemEnv, 1, 1000, 24, "FileBusWithRestarts"};
constexpr Suite kDiskSuite{Where::kFileOnDisk, 2'000'001, 10, 40, "FileBusOnDisk"};
constexpr Suite kMemSuite{Where::kMem, 1'000'001, 200, 40, "MemBus"};

// Runs `count` seeds from `base`, or only JUNCTION_MODEL_SEED with a trace.
void RunSeeds(const Suite& suite) {
  const char* replay = std::getenv("JUNCTION_MODEL_SEED");
  const log::Level previous = log::GetLevel();
  log::SetLevel(log::Level::kError);  // every Open logs (fsync=never warns)
  std::vector<std::uint64_t> seeds;
  if (replay != nullptr) {
    seeds.push_back(std::strtoull(replay, nullptr, 10));
  } else {
    for (int i = 0; i < EnvInt("JUNCTION_MODEL_SEEDS", suite.seeds); ++i) {
      seeds.push_back(EnvInt("JUNCTION_MODEL_SEED_BASE", 0) + suite.seed_base + i);
    }
  }
  int failures = 0;
  for (std::uint64_t seed : seeds) {
    std::string failure = Runner(seed, suite, replay != nullptr).Run();
    if (failure.empty()) continue;
    ADD_FAILURE() << failure;
    if (++failures == 3) {
      ADD_FAILURE() << "stopped after 3 diverging seeds";
      break;
    }
  }
  log::SetLevel(previous);
}

TEST(BrokerModel, FileBusWithRestarts) { RunSeeds(kFileSuite); }

TEST(BrokerModel, FileBusOnDisk) { RunSeeds(kDiskSuite); }

TEST(BrokerModel, MemBus) { RunSeeds(kMemSuite); }

}  // namespace
}  // namespace junction::model_test
