import main from '../../../../hosts/moddable/examples/sensor/main.js';
main();
