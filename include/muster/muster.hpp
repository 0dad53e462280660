// muster/muster.hpp: the whole public API in one include.
#pragma once

#include "muster/error.hpp"
#include "muster/future.hpp"
#include "muster/thread_pool.hpp"
