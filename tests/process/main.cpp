// The main of the process-pool test program: workers are this same program, so main must call
// muster::init before anything else (GoogleTest's own main would not).
#include <gtest/gtest.h>
#include <muster/init.hpp>

int main(int argc, char** argv) {
    muster::init(argc, argv);
    testing::InitGoogleTest(&argc, argv);
    return RUN_ALL_TESTS();
}
