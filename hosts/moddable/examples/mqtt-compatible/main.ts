// An app written for Moddable's `mqtt` module (the SDK's
// examples/network/mqtt/mqttbasic does the same: connect, subscribe when
// ready, publish every second, trace what comes back, stop on close), run on
// Dormouse by changing two lines: the import below (was `from "mqtt"`) and
// the include in manifest.json (was $(MODDABLE)/modules/network/mqtt/manifest.json).
// What it gains unchanged: QoS 1 publishes survive reconnects and power cuts,
// and the connection comes back by itself.
import Client from 'dormouse';
import Timer from 'timer';
import config from 'mc/config';

const topic = String(config.topic ?? 'moddable/mqtt/example');
let timer: ReturnType<typeof Timer.repeat> | undefined;

const mqtt = new Client({
  host: String(config.broker ?? 'test.mosquitto.org'),
  port: Number(config.port ?? 1883),
  id: String(config.clientId ?? 'dormouse-mqtt-compatible'),
  timeout: 60_000,
});

mqtt.onReady = function () {
  this.subscribe(`${topic}/#`);
  timer ??= Timer.repeat(() => {
    mqtt.publish(`${topic}/date`, `${Date.now()}`, { quality: 1 });
  }, 1000);
};
mqtt.onMessage = function (topic, body) {
  trace(`received "${topic}": ${String.fromArrayBuffer(body)}\n`);
};
mqtt.onClose = function () {
  trace('lost connection to server\n');
  if (timer !== undefined) {
    Timer.clear(timer);
    timer = undefined;
  }
};
