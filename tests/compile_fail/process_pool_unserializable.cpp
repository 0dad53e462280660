// expect-error: serialisable with cereal
// An argument type cereal cannot serialise is a compile error.
#include <muster/process_pool.hpp>

struct opaque {
    int x = 0;
};
int use(opaque o) { return o.x; }

int main() {
    muster::process_pool pool;
    (void)pool.submit<&use>(opaque{});
}
