// expect-error: process_pool[^ ]* in namespace [^ ]*muster[^ ]* does not name a type|no type named [^ ]*process_pool[^ ]* in namespace
// muster/muster.hpp is the thread pool alone (library muster::muster, the standard library
// only): the process pool comes from muster/process.hpp and muster::process.
#include <muster/muster.hpp>

muster::process_pool* pool = nullptr;
