#include "common/clock.h"

namespace geoledger {

const SystemClock& SystemClock::Get() {
  static const SystemClock clock;
  return clock;
}

}  // namespace geoledger
