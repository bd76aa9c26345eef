// The host has no instruction counter: the host build checks scores, not cost.
#include "platform.h"

void PlatformInit(void) {}
uint64_t PlatformCounterTicks(void) { return 0; }
size_t PlatformStackBytesUsed(void) { return 0; }
uint32_t PlatformKnownLoop(void) { return 0; }
