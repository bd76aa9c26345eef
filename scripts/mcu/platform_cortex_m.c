// A Cortex-M board under QEMU: the vector table and reset code (no vendor startup files),
// newlib with semihosting (librdimon) for stdio and files on the host, SysTick as the
// counter, and a painted stack to measure its use.

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "platform.h"

extern uint32_t __bss_start__[], __bss_end__[], __stack_limit[], __stack_top[];
extern void __libc_init_array(void);
extern void initialise_monitor_handles(void);
int main(int argc, char** argv);

#define SYST_CSR (*(volatile uint32_t*)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t*)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t*)0xE000E018u)
#define CPACR (*(volatile uint32_t*)0xE000ED88u)
#define SYSTICK_PERIOD 0x1000000u  // the 24-bit counter's wrap
#define STACK_PAINT 0x5AFEC0DEu
#define SYS_GET_CMDLINE 0x15
#define SYS_EXIT 0x18
#define ADP_STOPPED_RUN_TIME_ERROR 0x20023

static volatile uint32_t systick_wraps;

static int Semihost(int operation, void* argument) {
  register int r0 __asm("r0") = operation;
  register void* r1 __asm("r1") = argument;
  __asm volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
  return r0;
}

void SysTick_Handler(void) { ++systick_wraps; }

// A fault ends the emulation with an error status instead of hanging it.
void Fault_Handler(void) {
  Semihost(SYS_EXIT, (void*)ADP_STOPPED_RUN_TIME_ERROR);
  for (;;) {
  }
}

void Reset_Handler(void);

__attribute__((section(".vectors"), used)) static void (*const vectors[16])(void) = {
    (void (*)(void))__stack_top, Reset_Handler, Fault_Handler, Fault_Handler,
    Fault_Handler, Fault_Handler, Fault_Handler, 0, 0, 0, 0, Fault_Handler, Fault_Handler,
    0, Fault_Handler, SysTick_Handler,
};

// newlib's __libc_init_array calls these; crti/crtn are not linked (-nostartfiles).
void _init(void) {}
void _fini(void) {}
// What crtbegin would define: the module handle static destructors register under.
void* __dso_handle = &__dso_handle;

static char command_line[256];
static char* arguments[8];

// argc of the command line QEMU passes (-semihosting-config arg=...), split at spaces.
static int CommandLine(void) {
  struct {
    char* buffer;
    int length;
  } block = {command_line, sizeof(command_line) - 1};
  if (Semihost(SYS_GET_CMDLINE, &block) != 0) return 0;
  int count = 0;
  char* next = command_line;
  while (*next != '\0' && count < (int)(sizeof(arguments) / sizeof(arguments[0]))) {
    while (*next == ' ') *next++ = '\0';
    if (*next == '\0') break;
    arguments[count++] = next;
    while (*next != '\0' && *next != ' ') ++next;
  }
  return count;
}

void Reset_Handler(void) {
#if defined(__ARM_FP) || defined(__ARM_FEATURE_MVE)
  CPACR |= 0xFu << 20;  // CP10 and CP11 (FPU, MVE) on, before any code uses them
  __asm volatile("dsb\n isb" ::: "memory");
#endif
  for (uint32_t* word = __bss_start__; word < __bss_end__; ++word) *word = 0;
  uint32_t* stack_pointer;
  __asm volatile("mov %0, sp" : "=r"(stack_pointer));
  for (uint32_t* word = __stack_limit; word < stack_pointer - 16; ++word) *word = STACK_PAINT;
  initialise_monitor_handles();
  __libc_init_array();
  const int argc = CommandLine();
  exit(main(argc, arguments));
}

void PlatformInit(void) {
  SYST_RVR = SYSTICK_PERIOD - 1;
  SYST_CVR = 0;
  SYST_CSR = 0x7;  // enabled, wrap interrupt on, the processor clock
}

uint64_t PlatformCounterTicks(void) {
  uint32_t wraps, value;
  do {  // again if the counter wrapped meanwhile
    wraps = systick_wraps;
    value = SYST_CVR;
  } while (wraps != systick_wraps);
  return (uint64_t)wraps * SYSTICK_PERIOD + (SYSTICK_PERIOD - 1 - value);
}

size_t PlatformStackBytesUsed(void) {
  const uint32_t* word = __stack_limit;
  while (word < __stack_top && *word == STACK_PAINT) ++word;
  return (size_t)((const char*)__stack_top - (const char*)word);
}

uint32_t PlatformKnownLoop(void) {
  // 2 instructions per iteration (subs, bne): 20,000,000 in all, plus the call's few.
  uint32_t remaining = 10000000u;
  __asm volatile(
      ".syntax unified\n"
      "1: subs %0, %0, #1\n"
      "   bne 1b\n"
      : "+l"(remaining)
      :
      : "cc");
  return 2u * 10000000u;
}
