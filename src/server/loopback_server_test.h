#pragma once

// A junctiond for tests of clients against a real daemon: mem://, an
// ephemeral loopback port, two shards; started before each test, stopped
// (and the stop checked) after it.

#include <memory>

#include <gtest/gtest.h>

#include "server/server.h"

namespace junction::server {

class LoopbackServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ServerOptions options;
    options.bus_url = "mem://";
    options.listen = "127.0.0.1:0";
    options.shards = 2;
    Result<std::unique_ptr<Server>> server = Server::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
  }
  void TearDown() override {
    if (server_) {
      EXPECT_TRUE(server_->Stop().ok());
    }
  }

  std::unique_ptr<Server> server_;
};

}  // namespace junction::server
