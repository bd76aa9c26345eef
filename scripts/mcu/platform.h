// What the application needs from where it runs: the host (platform_host.cc) or a
// Cortex-M board under QEMU (platform_cortex_m.c).
#ifndef PERSON_DETECTION_PLATFORM_H_
#define PERSON_DETECTION_PLATFORM_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// Starts the counter; on a board also marks the stack so that its use can be measured.
void PlatformInit(void);

// A free-running counter: on a board, SysTick ticks of the processor clock (under QEMU's
// -icount a fixed number of instructions per tick); 0 on the host.
uint64_t PlatformCounterTicks(void);

// Bytes of stack used so far (the deepest point reached); 0 on the host.
size_t PlatformStackBytesUsed(void);

// Runs a loop of known length and returns the instructions it executes (the counter
// check); 0 on the host.
uint32_t PlatformKnownLoop(void);

#ifdef __cplusplus
}
#endif

#endif  // PERSON_DETECTION_PLATFORM_H_
