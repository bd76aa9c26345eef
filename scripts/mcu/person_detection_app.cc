// The person_detection example's shape, on our generated files: the resolver from the
// settings header's op X-macro, the arena of kTensorArenaSize, each camera pixel through
// kPixelToInput, the decision by Detect. Built for the host and for Cortex-M boards by
// scripts/build_firmware.py, which writes model_binding.h (the model's names).
//
// Usage: person_detection_app FRAMES COUNT
//   FRAMES: COUNT frames of kMaxImageSize 8-bit camera pixels each, back to back.
// Prints one line per frame (scores in class order, the decision, counter ticks of
// Invoke), ticks per op type of the first frame, the arena bytes used, the stack bytes
// used, and the counter's ticks over a loop of known length (the counter check).

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "model_binding.h"
#include "platform.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "tensorflow/lite/micro/micro_profiler_interface.h"
#include "tensorflow/lite/schema/schema_generated.h"

namespace {

namespace settings = MODEL_SETTINGS_NAMESPACE;

alignas(16) uint8_t tensor_arena[settings::kTensorArenaSize];

// Counter ticks per op type (the event tag TFLM gives each op: its name).
class OpProfiler : public tflite::MicroProfilerInterface {
 public:
  static constexpr int kMaxTags = 16;

  uint32_t BeginEvent(const char* tag) override {
    if (stopped_) return kMaxTags;
    int index = 0;
    while (index < count_ && std::strcmp(tags_[index], tag) != 0) ++index;
    if (index == count_) {
      if (count_ == kMaxTags) return kMaxTags;
      tags_[count_++] = tag;
    }
    start_ = PlatformCounterTicks();
    return static_cast<uint32_t>(index);
  }

  void EndEvent(uint32_t handle) override {
    if (handle < static_cast<uint32_t>(count_)) {
      ticks_[handle] += PlatformCounterTicks() - start_;
      ++events_[handle];
    }
  }

  void Print() const {
    for (int i = 0; i < count_; ++i) {
      std::printf("op %s %u %llu\n", tags_[i], events_[i],
                  static_cast<unsigned long long>(ticks_[i]));
    }
  }

  void Stop() { stopped_ = true; }

 private:
  const char* tags_[kMaxTags] = {};
  uint64_t ticks_[kMaxTags] = {};
  unsigned events_[kMaxTags] = {};
  int count_ = 0;
  uint64_t start_ = 0;
  bool stopped_ = false;
};

int Fail(const char* what) {
  std::printf("error: %s\n", what);
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  PlatformInit();
  if (argc != 3) return Fail("usage: person_detection_app FRAMES COUNT");
  const long frame_count = std::strtol(argv[2], nullptr, 10);
  FILE* frames = std::fopen(argv[1], "rb");
  if (frames == nullptr) return Fail("cannot open the frames file");

  const tflite::Model* model = tflite::GetModel(MODEL_ARRAY);
  if (model->version() != TFLITE_SCHEMA_VERSION) return Fail("model schema version");
  static tflite::MicroMutableOpResolver<settings::kOpCount> resolver;
#define ADD_OP(name) \
  if (resolver.Add##name() != kTfLiteOk) return Fail("resolver: " #name);
  MODEL_OPS(ADD_OP)
#undef ADD_OP
  static OpProfiler profiler;
  static tflite::MicroInterpreter interpreter(model, resolver, tensor_arena,
                                              settings::kTensorArenaSize, nullptr,
                                              &profiler);
  if (interpreter.AllocateTensors() != kTfLiteOk) return Fail("AllocateTensors");
  TfLiteTensor* input = interpreter.input(0);
  TfLiteTensor* output = interpreter.output(0);
  if (input->bytes != static_cast<size_t>(settings::kMaxImageSize)) {
    return Fail("input size differs from kMaxImageSize");
  }

  static uint8_t pixels[settings::kMaxImageSize];
  for (long frame = 0; frame < frame_count; ++frame) {
    if (std::fread(pixels, 1, sizeof(pixels), frames) != sizeof(pixels)) {
      return Fail("frames file too short");
    }
    for (int i = 0; i < settings::kMaxImageSize; ++i) {
      input->data.int8[i] = settings::PixelToInput(pixels[i]);
    }
    const uint64_t start = PlatformCounterTicks();
    if (interpreter.Invoke() != kTfLiteOk) return Fail("Invoke");
    const uint64_t ticks = PlatformCounterTicks() - start;
    if (frame == 0) profiler.Stop();  // per op: the first frame's
    std::printf("frame %ld", frame);
    for (int c = 0; c < settings::kCategoryCount; ++c) {
      std::printf(" %d", output->data.int8[c]);
    }
    const int8_t score = output->data.int8[settings::kCategoryCount - 1];
    const settings::Detection detection = settings::Detect(score);
    std::printf(" %s %llu\n",
                detection == settings::Detection::kPresent  ? "present"
                : detection == settings::Detection::kAbsent ? "absent"
                                                            : "unsure",
                static_cast<unsigned long long>(ticks));
  }
  std::fclose(frames);
  profiler.Print();
  std::printf("arena_used %u of %d\n", static_cast<unsigned>(interpreter.arena_used_bytes()),
              settings::kTensorArenaSize);
  std::printf("stack_used %u\n", static_cast<unsigned>(PlatformStackBytesUsed()));
  const uint64_t loop_start = PlatformCounterTicks();
  const uint32_t loop_instructions = PlatformKnownLoop();
  std::printf("known_loop %lu %llu\n", static_cast<unsigned long>(loop_instructions),
              static_cast<unsigned long long>(PlatformCounterTicks() - loop_start));
  std::printf("done\n");
  return 0;
}
