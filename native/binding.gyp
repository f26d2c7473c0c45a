{
  "targets": [
    {
      "target_name": "smc_verbs",
      "sources": [
        "src/addon.cc",
        "src/errors.cc",
        "src/context.cc",
        "src/pd_mr.cc",
        "src/cq.cc",
        "src/qp.cc",
        "src/netutil.cc",
        "src/data_pump.cc",
        "src/link.cc",
        "src/smco_lookup.cc",
        "src/tcp_relay.cc",
        "src/memory.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "../sidecar/bpf"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17", "-std=gnu++20"],
      "cflags": ["-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-fvisibility=hidden"],
      "libraries": ["-libverbs"]
    }
  ]
}
