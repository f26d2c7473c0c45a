/** The device plugin's defaults, free of imports so the flag parser can use them without loading gRPC. */
export const DEFAULT_DEVICE_PLUGIN_DIR = '/var/lib/kubelet/device-plugins/';
export const DEFAULT_RESOURCE_NAME = 'smc.dev/rdma';
export const DEFAULT_RESOURCE_SLOTS = 1000;
/** Our socket's file name in the device-plugin dir. */
export const SOCKET_NAME = 'smc-rdma.sock';
