// A program whose static initialisation starts a thread (as some logging and metrics libraries
// do). Its pool's fork server is then not single-threaded, and forking it could copy a lock that
// thread holds: the server must spawn each worker (exec) instead, and the pool must work as usual
// (docs/design/process_pool.md, "Fork server").
#include <gtest/gtest.h>
#include <muster/process.hpp>

#include <fstream>
#include <string>
#include <thread>

#include <unistd.h>

#include "process_info.hpp"

namespace {

int add(int a, int b) { return a + b; }
int my_pid() { return static_cast<int>(::getpid()); }
int crash() { ::abort(); }

/// Started before main in every process of this program, the fork server included.
struct background_thread {
    background_thread() {
        std::thread([] {
            for (;;) ::pause();
        }).detach();
    }
};
const background_thread g_background;

/// argv[1] of process `pid`, from /proc/<pid>/cmdline.
std::string argv1_of(pid_t pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/cmdline");
    std::string argv0, argv1;
    std::getline(f, argv0, '\0');
    std::getline(f, argv1, '\0');
    return argv1;
}

TEST(ProcessPoolThreadedInit, ServerSpawnsWorkersInsteadOfForking) {
    muster::process_pool pool({.max_workers = 2});
    EXPECT_EQ(pool.submit<&add>(1, 2).result(), 3);
    int const pid = pool.submit<&my_pid>().result();
    // A forked worker would keep the server's command line; a spawned one has its own.
    EXPECT_EQ(argv1_of(pid), "--muster-worker");
    pid_t const server = muster_test::parent_pid(pid);
    EXPECT_EQ(argv1_of(server), "--muster-fork-server");
    EXPECT_EQ(muster_test::parent_pid(server), ::getpid());
    // The rest of the protocol is unchanged: a crash fails only its task, with its cause.
    try {
        pool.submit<&crash>().result();
        ADD_FAILURE() << "the crashing task returned";
    } catch (const muster::worker_lost_error& e) {
        EXPECT_NE(std::string(e.what()).find("SIGABRT"), std::string::npos) << e.what();
    }
    EXPECT_EQ(pool.submit<&add>(2, 2).result(), 4);
}

}  // namespace

int main(int argc, char** argv) {
    muster::init(argc, argv);
    testing::InitGoogleTest(&argc, argv);
    return RUN_ALL_TESTS();
}
