export default { broker: 'broker.local', port: 1883, clientId: 'dormouse-1', topic: 'sensors/dormouse-1', sleepSeconds: 300, awakeSeconds: 10, wifi: 'net', wifiPassword: 'secret' };
