// muster/process.hpp: the thread-pool API and the process pool in one include (library
// muster::process, which links muster::muster and cereal).
//
// Workers are the program itself, re-executed: call muster::init(argc, argv) as the first line
// of main.
#pragma once

#include "muster/init.hpp"
#include "muster/muster.hpp"
#include "muster/process_pool.hpp"
