// muster/muster.hpp: the whole thread-pool API in one include (library muster::muster).
// The process pool is muster/process.hpp (library muster::process).
#pragma once

#include "muster/completion_queue.hpp"
#include "muster/error.hpp"
#include "muster/future.hpp"
#include "muster/map.hpp"
#include "muster/parallel_for.hpp"
#include "muster/thread_pool.hpp"
#include "muster/wait.hpp"
