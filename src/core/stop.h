#pragma once
// Waiting that a thread's stop request interrupts at once (for owned std::jthread loops).
#include <stop_token>

#include "core/clock.h"

namespace kiln {

// Sleeps until `deadline` or until `stop` is requested, whichever is first. Returns false
// when stopped.
bool SleepUntil(const std::stop_token& stop, MonoTime deadline);

}  // namespace kiln
