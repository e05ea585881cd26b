#include "junction/result.h"

#include <memory>
#include <string>

#include <gtest/gtest.h>

namespace junction {
namespace {

Result<int> Half(int n) {
  if (n % 2 != 0) return InvalidArgumentError("odd: " + std::to_string(n));
  return n / 2;
}

Result<int> Quarter(int n) {
  JUNCTION_ASSIGN_OR_RETURN(int half, Half(n));
  JUNCTION_ASSIGN_OR_RETURN(int quarter, Half(half));
  return quarter;
}

Status CheckEven(int n) {
  JUNCTION_RETURN_IF_ERROR(Half(n));
  return OkStatus();
}

Status CheckBoth(const Status& first, const Status& second) {
  JUNCTION_RETURN_IF_ERROR(first);
  JUNCTION_RETURN_IF_ERROR(second);
  return OkStatus();
}

TEST(ResultTest, HoldsAValue) {
  Result<std::string> r = std::string("hello");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r);
  EXPECT_EQ(*r, "hello");
  EXPECT_EQ(r->size(), 5u);
  EXPECT_TRUE(r.status().ok());
}

TEST(ResultTest, HoldsAnError) {
  Result<int> r = NotFoundError("gone");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(r.error().message(), "gone");
  EXPECT_EQ(r.value_or(7), 7);
}

TEST(ResultTest, OkStatusWithoutValueBecomesInternal) {
  Result<int> r = OkStatus();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInternal);
}

TEST(ResultTest, MoveOnlyValues) {
  Result<std::unique_ptr<int>> r = std::make_unique<int>(42);
  ASSERT_TRUE(r.ok());
  std::unique_ptr<int> taken = std::move(r).value();
  EXPECT_EQ(*taken, 42);
}

TEST(ResultTest, ConvertsFromCompatibleValue) {
  Result<std::string> r = "literal";
  EXPECT_EQ(*r, "literal");
  Result<std::string> in_place(std::in_place, 3, 'x');
  EXPECT_EQ(*in_place, "xxx");
}

TEST(ResultTest, AssignOrReturnPropagatesTheFirstError) {
  EXPECT_EQ(*Quarter(8), 2);
  Result<int> odd_half = Quarter(6);
  ASSERT_FALSE(odd_half.ok());
  EXPECT_EQ(odd_half.status().message(), "odd: 3");
  EXPECT_EQ(Quarter(5).status().message(), "odd: 5");
}

TEST(ResultTest, ReturnIfErrorAcceptsStatusAndResult) {
  EXPECT_TRUE(CheckEven(4).ok());
  EXPECT_EQ(CheckEven(3).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(CheckBoth(OkStatus(), AbortedError("b")).code(), StatusCode::kAborted);
  EXPECT_EQ(CheckBoth(UnavailableError("a"), AbortedError("b")).code(), StatusCode::kUnavailable);
}

TEST(ResultDeathTest, ValueOnErrorAbortsWithTheStatus) {
  Result<int> r = DataLossError("torn batch");
  EXPECT_DEATH((void)r.value(), "DATA_LOSS: torn batch");
}

TEST(ResultDeathTest, CheckAbortsWithConditionAndDetail) {
  int offset = 3;
  EXPECT_DEATH(JUNCTION_CHECK(offset == 4) << "offset was " << offset,
               "JUNCTION_CHECK failed: offset == 4 offset was 3");
  JUNCTION_CHECK(offset == 3) << "never printed";
}

}  // namespace
}  // namespace junction

namespace junction {
namespace {

TEST(ResultDefaultTest, DefaultIsAnUnknownErrorNotAValue) {
  Result<int> r;
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnknown);
}

}  // namespace
}  // namespace junction
