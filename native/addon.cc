// The only file that knows N-API. Converts arguments, calls into the native
// library, and turns Status values into TidemarkError objects.
#include <napi.h>

#include "crc32c.h"

namespace {

// crc32c(buf: Uint8Array, seed: number) -> number. Arguments are validated in TypeScript.
Napi::Value Crc32c(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto view = info[0].As<Napi::TypedArray>();
  auto* data = static_cast<const uint8_t*>(view.ArrayBuffer().Data()) + view.ByteOffset();
  uint32_t seed = info[1].As<Napi::Number>().Uint32Value();
  return Napi::Number::New(env, tidemark::crc32c_extend(seed, data, view.ByteLength()));
}

Napi::Value Crc32cImplementation(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), tidemark::crc32c_implementation());
}

Napi::Value Crc32cForceTable(const Napi::CallbackInfo& info) {
  tidemark::crc32c_force_table(info[0].As<Napi::Boolean>().Value());
  return info.Env().Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("crc32c", Napi::Function::New(env, Crc32c, "crc32c"));
  exports.Set("crc32cImplementation", Napi::Function::New(env, Crc32cImplementation, "crc32cImplementation"));
  exports.Set("crc32cForceTable", Napi::Function::New(env, Crc32cForceTable, "crc32cForceTable"));
  return exports;
}

}  // namespace

NODE_API_MODULE(tidemark, Init)
