#include "cohort/codec/zstd.h"

#include <zstd.h>

#include <memory>

namespace cohort::codec {
namespace {

// One context per thread, reused across frames, freed when the thread ends.
struct FreeCCtx {
  void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};
struct FreeDCtx {
  void operator()(ZSTD_DCtx* c) const { ZSTD_freeDCtx(c); }
};

class Zstd final : public ByteCodec {
 public:
  explicit Zstd(int level) : level_(level) {}
  std::string spec() const override { return "zstd:" + std::to_string(level_); }
  int64_t bound(int64_t n) const override {
    return static_cast<int64_t>(ZSTD_compressBound(static_cast<size_t>(n)));
  }

  Status compress(std::string_view in, std::string* out) const override {
    const size_t old = out->size();
    out->resize(old + ZSTD_compressBound(in.size()));
    thread_local std::unique_ptr<ZSTD_CCtx, FreeCCtx> cctx(ZSTD_createCCtx());
    const size_t n = ZSTD_compressCCtx(cctx.get(), out->data() + old, out->size() - old, in.data(),
                                       in.size(), level_);
    if (ZSTD_isError(n)) {
      out->resize(old);
      return Status::internal(std::string("zstd: compression failed: ") + ZSTD_getErrorName(n));
    }
    out->resize(old + n);
    return Status();
  }

  Status decompress(std::string_view in, std::span<uint8_t> out) const override {
    const unsigned long long size = ZSTD_getFrameContentSize(in.data(), in.size());
    if (size == ZSTD_CONTENTSIZE_ERROR) {
      return Status::data_loss("zstd: not a zstd frame");
    }
    if (size != ZSTD_CONTENTSIZE_UNKNOWN && size != out.size()) {
      return Status::data_loss("zstd: frame holds " + std::to_string(size) + " bytes, expected " +
                               std::to_string(out.size()));
    }
    thread_local std::unique_ptr<ZSTD_DCtx, FreeDCtx> dctx(ZSTD_createDCtx());
    const size_t n = ZSTD_decompressDCtx(dctx.get(), out.data(), out.size(), in.data(), in.size());
    if (ZSTD_isError(n)) {
      return Status::data_loss(std::string("zstd: ") + ZSTD_getErrorName(n));
    }
    if (n != out.size()) {
      return Status::data_loss("zstd: frame decompressed to " + std::to_string(n) +
                               " bytes, expected " + std::to_string(out.size()));
    }
    return Status();
  }

 private:
  int level_;
};

}  // namespace

std::unique_ptr<ByteCodec> make_zstd(int level) { return std::make_unique<Zstd>(level); }

}  // namespace cohort::codec
