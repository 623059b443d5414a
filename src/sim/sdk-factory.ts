import { MoatDevice } from "../device/index.js";
import { errorCodeOf } from "./stats.js";
import type { DeviceFactory, FleetDevice } from "./fleet-device.js";

/** Simulated devices are the device SDK's own `MoatDevice`s, with its defaults (renewal, back-off). */
export function sdkDeviceFactory(): DeviceFactory {
  return {
    enroll: (input) => MoatDevice.enroll(input),
    open: (input) => MoatDevice.open(input),
    watch(device: FleetDevice, listener) {
      if (!(device instanceof MoatDevice)) return () => undefined;
      const connected = () => listener({ state: "connected" });
      const disconnected = () => listener({ state: "disconnected" });
      const stopped = (error: unknown) => listener({ state: "stopped", code: errorCodeOf(error) });
      device.on("connected", connected);
      device.on("disconnected", disconnected);
      device.on("stopped", stopped);
      return () => {
        device.off("connected", connected);
        device.off("disconnected", disconnected);
        device.off("stopped", stopped);
      };
    },
  };
}
