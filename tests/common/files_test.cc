// ReadRegularFile: the whole file through one descriptor, nothing for a
// missing path, and a refusal (never a wait) for anything but a regular file.
#include "common/files.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <future>
#include <string>

namespace geoledger {
namespace {

class ReadRegularFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/geoledger-files-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    for (const char* name : {"/file", "/fifo", "/sub"}) ::remove((dir_ + name).c_str());
    ::rmdir(dir_.c_str());
  }
  std::string dir_;
};

TEST_F(ReadRegularFileTest, ReadsTheFileAndItsStat) {
  const std::string path = dir_ + "/file";
  std::ofstream(path, std::ios::binary) << std::string(100000, 'x') << "end";
  ASSERT_EQ(::chmod(path.c_str(), 0640), 0);
  struct stat st {};
  auto text = ReadRegularFile(path, &st);
  ASSERT_TRUE(text.ok()) << text.status().ToString();
  ASSERT_TRUE(text->has_value());
  EXPECT_EQ(**text, std::string(100000, 'x') + "end");
  EXPECT_EQ(st.st_mode & 0777, 0640u);
  EXPECT_EQ(st.st_size, 100003);
}

TEST_F(ReadRegularFileTest, NothingThereIsNullopt) {
  auto text = ReadRegularFile(dir_ + "/missing");
  ASSERT_TRUE(text.ok()) << text.status().ToString();
  EXPECT_FALSE(text->has_value());
}

// A directory would read as empty; a FIFO would block the reader until
// someone wrote to it (a start that never ends).
TEST_F(ReadRegularFileTest, ADirectoryOrAFifoIsRefusedAtOnce) {
  ASSERT_EQ(::mkdir((dir_ + "/sub").c_str(), 0700), 0);
  ASSERT_EQ(::mkfifo((dir_ + "/fifo").c_str(), 0600), 0);
  for (const char* name : {"/sub", "/fifo"}) {
    const std::string path = dir_ + name;
    auto read = std::async(std::launch::async, [path] { return ReadRegularFile(path); });
    if (read.wait_for(std::chrono::seconds(30)) != std::future_status::ready) {
      ADD_FAILURE() << path << " was waited on";
      // Release the blocked reader, so the test ends.
      const int writer = ::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
      if (writer >= 0) ::close(writer);
    }
    auto text = read.get();
    EXPECT_FALSE(text.ok()) << path;
    EXPECT_NE(text.status().message().find("not a regular file"), std::string::npos) << text.status().ToString();
  }
}

}  // namespace
}  // namespace geoledger
