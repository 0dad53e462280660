// muster/muster.hpp: the whole public API in one include.
#pragma once

#include "muster/completion_queue.hpp"
#include "muster/error.hpp"
#include "muster/future.hpp"
#include "muster/map.hpp"
#include "muster/process_pool.hpp"
#include "muster/parallel_for.hpp"
#include "muster/thread_pool.hpp"
#include "muster/wait.hpp"
