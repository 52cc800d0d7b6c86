// Fuzz target: an update stream as the server receives it (PushUpdate): protobuf UpdateChunk
// messages parsed from arbitrary bytes (framed by fuzz_input.h), the header's checks (layout
// against the model's), chunk reassembly into the model-sized
// buffer (wire::ChunkAssembler), then admission (finiteness, examples, norm, steps, metrics)
// exactly as fleet_service.cc runs them. Anything but a clean Status is a finding.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "cohort/runtime/admission.h"
#include "cohort/v1/fleet.pb.h"
#include "deploy/wire.h"
#include "fuzz_input.h"

namespace {

namespace pb = cohort::v1;
using namespace cohort;  // NOLINT

std::shared_ptr<const ArrayLayout> model_layout() {
  static const std::shared_ptr<const ArrayLayout> layout =
      *ArrayLayout::create({{"w", {3, 4}}, {"b", {4}}, {"bn.mean", {4}, false}});
  return layout;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Frames frames(data, size);
  std::string bytes;
  pb::UpdateChunk msg;
  if (!frames.next(&bytes) || !msg.ParseFromString(bytes) || !msg.has_header()) return 0;
  const pb::UpdateHeader h = msg.header();
  const std::shared_ptr<const ArrayLayout> layout = model_layout();
  if (wire::layout_difference(h.layout(), *layout)) return 0;
  Update u;
  u.client = 1;
  u.base_version = h.base_version();
  u.delta = ArrayRecord(layout);
  std::optional<wire::ChunkAssembler> assembler;
  assembler.emplace("update stream",
                    std::vector<wire::ChunkAssembler::Buffer>{
                        {reinterpret_cast<char*>(u.delta.data()), u.delta.num_bytes()}});
  while (frames.next(&bytes)) {
    pb::UpdateChunk c;
    if (!c.ParseFromString(bytes) || !c.has_chunk()) return 0;
    if (!assembler->add(c.chunk()).ok()) return 0;
  }
  if (!assembler->finish().ok()) return 0;
  u.num_examples = h.num_examples();
  u.local_steps = h.local_steps();
  for (const auto& [k, v] : h.metrics()) u.metrics[k] = v;
  static const Admission admission(AdmissionOptions{});
  Task task;
  task.client = 1;
  task.version = h.base_version();
  task.local_steps = 10;
  task.model = std::make_shared<const ArrayRecord>(layout);
  AdmissionContext ctx;
  ctx.registered_examples = 50;
  ctx.typical_examples = 50;
  AdmissionOutcome outcome;
  (void)admission.admit(u, task, ctx, &outcome);
  return 0;
}
