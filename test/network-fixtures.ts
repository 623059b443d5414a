/** Policies shared by the network segmentation tests. */

/** The seed guide's network-segmentation.yml, byte for byte (blank lines between VLANs included). */
export const SEED_POLICY = `# network-segmentation.yml
# Separate IoT devices into VLANs

vlans:
  - id: 10
    name: iot-sensors
    subnet: 192.168.10.0/24
    firewall_rules:
      - allow: mqtt (1883, 8883)
      - allow: https (443)
      - deny: all

  - id: 20
    name: iot-gateways
    subnet: 192.168.20.0/24
    firewall_rules:
      - allow: mqtt (1883, 8883)
      - allow: https (443)
      - allow: ssh (22) from admin_network
      - deny: all

  - id: 30
    name: iot-management
    subnet: 192.168.30.0/24
    firewall_rules:
      - allow: all from admin_network
      - deny: all
`;

/** The seed plus the networks it needs (examples/segmentation/network-segmentation.yml). */
export const EXAMPLE_POLICY_PATH = new URL("../examples/segmentation/network-segmentation.yml", import.meta.url);
export const MUD_EXAMPLE_PATH = new URL("../examples/segmentation/thermostat.mud.json", import.meta.url);
