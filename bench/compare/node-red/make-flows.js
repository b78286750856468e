// Writes the Node-RED flow of bench/compare/run.sh to stdout: one modbus-client, one
// modbus-read node per block of BLOCK holding registers (the optimal cover of REGISTERS
// contiguous registers: ceil(REGISTERS / 125) requests), each polling every RATE_S seconds,
// all wired to one mqtt-out node that publishes each block's array of values as JSON on
// kiln-bench/nr/<first register>.
//   node make-flows.js MODBUS_PORT MQTT_PORT [REGISTERS=1000] [BLOCK=125] [RATE_S=1]
'use strict'
const [modbusPort, mqttPort, registers = '1000', block = '125', rate = '1'] = process.argv.slice(2)
if (!modbusPort || !mqttPort) {
  console.error('usage: node make-flows.js MODBUS_PORT MQTT_PORT [REGISTERS] [BLOCK] [RATE_S]')
  process.exit(2)
}
const n = Number(registers)
const b = Number(block)
if (!(b >= 1 && b <= 125)) throw new Error('BLOCK must be 1..125 (Modbus function 3 limit)')

const flows = [
  { id: 'bench-tab', type: 'tab', label: 'kiln bench', disabled: false, info: '' },
  {
    id: 'bench-modbus',
    type: 'modbus-client',
    name: 'kiln-sim',
    clienttype: 'tcp',
    bufferCommands: true,
    stateLogEnabled: false,
    queueLogEnabled: false,
    failureLogEnabled: true,
    tcpHost: '127.0.0.1',
    tcpPort: String(modbusPort),
    tcpType: 'DEFAULT',
    serialPort: '/dev/ttyUSB',
    serialType: 'RTU-BUFFERD',
    serialBaudrate: '9600',
    serialDatabits: '8',
    serialStopbits: '1',
    serialParity: 'none',
    serialConnectionDelay: '100',
    serialAsciiResponseStartDelimiter: '0x3A',
    unit_id: '1',
    commandDelay: '1',
    clientTimeout: '1000',
    reconnectOnTimeout: true,
    reconnectTimeout: '2000',
    parallelUnitIdsAllowed: true
  },
  {
    id: 'bench-broker',
    type: 'mqtt-broker',
    name: 'mosquitto',
    broker: '127.0.0.1',
    port: String(mqttPort),
    clientid: 'node-red-bench',
    autoConnect: true,
    usetls: false,
    protocolVersion: '4',
    keepalive: '60',
    cleansession: true,
    autoUnsubscribe: true,
    birthTopic: '',
    closeTopic: '',
    willTopic: ''
  },
  {
    id: 'bench-mqtt-out',
    type: 'mqtt out',
    z: 'bench-tab',
    name: 'publish',
    topic: '',
    qos: '0',
    retain: 'false',
    respTopic: '',
    contentType: '',
    userProps: '',
    correl: '',
    expiry: '',
    broker: 'bench-broker',
    x: 600,
    y: 100,
    wires: []
  }
]
for (let start = 0, i = 0; start < n; start += b, ++i) {
  flows.push({
    id: `bench-read-${i}`,
    type: 'modbus-read',
    z: 'bench-tab',
    name: `holding ${start}..${Math.min(start + b, n) - 1}`,
    topic: `kiln-bench/nr/${start}`,
    showStatusActivities: false,
    logIOActivities: false,
    showErrors: true,
    unitid: '1',
    dataType: 'HoldingRegister',
    adr: String(start),
    quantity: String(Math.min(b, n - start)),
    rate: String(rate),
    rateUnit: 's',
    delayOnStart: false,
    startDelayTime: '',
    server: 'bench-modbus',
    useIOFile: false,
    ioFile: '',
    useIOForPayload: false,
    emptyMsgOnFail: false,
    x: 200,
    y: 100 + 60 * i,
    wires: [['bench-mqtt-out'], []]
  })
}
process.stdout.write(JSON.stringify(flows) + '\n')
