#pragma once

// DeliveryRef: how an ack names the delivery it is for (light: for the
// transports' headers, which do not pull in the broker's).

#include <cstdint>

#include "junction/ids.h"

namespace junction::broker {

// A delivery as the broker hands it out; the transport wraps it into the
// public Delivery, with a DeliveryControl that calls back with `ref`.
struct DeliveryRef {
  std::uint64_t group_id = 0;
  PartitionId partition;
  Offset offset;
  std::uint64_t delivery_id = 0;  // the attempt: acks must name it
};

}  // namespace junction::broker
