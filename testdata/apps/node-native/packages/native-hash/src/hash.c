#include <stdint.h>
#include <stddef.h>
#include <node_api.h>

/* The build root has the SQLite library (Python's sqlite3 module needs it) but not its -dev
 * headers: the one function used is declared here, as sqlite3.h declares it. */
extern const char *sqlite3_libversion(void);

#define CHECK(env, call)                                                   \
  do {                                                                     \
    if ((call) != napi_ok) {                                               \
      napi_throw_error((env), NULL, "native-hash: " #call " failed");      \
      return NULL;                                                         \
    }                                                                      \
  } while (0)

static napi_value fnv1a(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1) {
    napi_throw_type_error(env, NULL, "fnv1a expects a Buffer");
    return NULL;
  }
  void *data = NULL;
  size_t len = 0;
  CHECK(env, napi_get_buffer_info(env, argv[0], &data, &len));
  const unsigned char *p = data;
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < len; i++) {
    h ^= p[i];
    h *= 16777619u;
  }
  napi_value out;
  CHECK(env, napi_create_uint32(env, h, &out));
  return out;
}

static napi_value sqlite_version(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value out;
  CHECK(env, napi_create_string_utf8(env, sqlite3_libversion(), NAPI_AUTO_LENGTH, &out));
  return out;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"fnv1a", NULL, fnv1a, NULL, NULL, NULL, napi_default, NULL},
    {"sqliteVersion", NULL, sqlite_version, NULL, NULL, NULL, napi_default, NULL},
  };
  CHECK(env, napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
