// The only file that knows N-API. Converts arguments, calls into the native
// library, and turns Status values into TidemarkError objects.
#include <napi.h>

#include "crc32c.h"

namespace {

// crc32c(buf: Uint8Array, seed: number) -> number. Arguments are validated in TypeScript.
// This is the hot call for small buffers, so it is written against the C N-API directly:
// one napi_get_typedarray_info gives the (offset-adjusted) data pointer and length
// without creating an ArrayBuffer handle, and nothing else is converted.
napi_value Crc32c(napi_env env, napi_callback_info cbinfo) {
  size_t argc = 2;
  napi_value argv[2];
  if (napi_get_cb_info(env, cbinfo, &argc, argv, nullptr, nullptr) != napi_ok || argc < 2) {
    napi_throw_type_error(env, nullptr, "crc32c(data, seed): two arguments expected");
    return nullptr;
  }
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  if (napi_get_typedarray_info(env, argv[0], &type, &length, &data, nullptr, nullptr) != napi_ok ||
      type != napi_uint8_array) {
    napi_throw_type_error(env, nullptr, "crc32c(data, seed): data must be a Uint8Array");
    return nullptr;
  }
  uint32_t seed = 0;
  if (napi_get_value_uint32(env, argv[1], &seed) != napi_ok) {
    napi_throw_type_error(env, nullptr, "crc32c(data, seed): seed must be a number");
    return nullptr;
  }
  // An empty view may have no backing store (data == nullptr); crc32c of nothing is the seed.
  const uint32_t crc = length == 0 ? seed : tidemark::crc32c_extend(seed, static_cast<const uint8_t*>(data), length);
  napi_value result;
  if (napi_create_uint32(env, crc, &result) != napi_ok) return nullptr;
  return result;
}

Napi::Value Crc32cImplementation(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), tidemark::crc32c_implementation());
}

Napi::Value Crc32cForceTable(const Napi::CallbackInfo& info) {
  tidemark::crc32c_force_table(info[0].As<Napi::Boolean>().Value());
  return info.Env().Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  napi_value crc32c_fn;
  if (napi_create_function(env, "crc32c", NAPI_AUTO_LENGTH, Crc32c, nullptr, &crc32c_fn) != napi_ok) {
    Napi::Error::New(env, "tidemark: could not create crc32c").ThrowAsJavaScriptException();
    return exports;
  }
  exports.Set("crc32c", Napi::Value(env, crc32c_fn));
  exports.Set("crc32cImplementation", Napi::Function::New(env, Crc32cImplementation, "crc32cImplementation"));
  exports.Set("crc32cForceTable", Napi::Function::New(env, Crc32cForceTable, "crc32cForceTable"));
  return exports;
}

}  // namespace

NODE_API_MODULE(tidemark, Init)
