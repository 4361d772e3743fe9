import '../../../../hosts/moddable/examples/mqtt-compatible/main.js';
