#!/bin/sh
# The same device with the Mosquitto command-line clients (Debian package mosquitto-clients).
# Both verify the broker's certificate against Moat's CA chain and its host name (never --insecure)
# and authenticate with the device certificate. The client id (-i) must be the device id, so one
# device holds one session at a time: the two commands below run one after the other.
#
#   moat ca chain > ca.pem
#   moat cert issue --device sensor-1 --generate-key --key-out sensor-1.key --out sensor-1.pem
#   sh examples/mqtt/mosquitto.sh localhost 8883 sensor-1
set -eu
HOST=${1:-localhost}
PORT=${2:-8883}
DEVICE=${3:-sensor-1}
TLS="-h $HOST -p $PORT --cafile ca.pem --cert $DEVICE.pem --key $DEVICE.key --tls-version tlsv1.2 -i $DEVICE"

# Publish a telemetry reading with QoS 1 (allowed by the built-in `device` role).
mosquitto_pub $TLS -t "devices/$DEVICE/telemetry/temperature" -m '{"celsius":23.5}' -q 1

# Wait up to 30 s for one command addressed to this device.
mosquitto_sub $TLS -t "devices/$DEVICE/commands/#" -q 1 -C 1 -W 30 -v || echo "no command within 30 s"

# Without a client certificate, with a token instead (username = device id, password = JWT):
#   mosquitto_pub -h $HOST -p $PORT --cafile ca.pem -i $DEVICE -u $DEVICE -P "$TOKEN" -t ... -m ...
