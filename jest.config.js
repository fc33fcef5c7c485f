// Two projects: unit tests (pure logic, mocks allowed) and integration tests (real ffmpeg,
// real sharp, real HTTP servers on loopback). `npm test` runs both.
const tsJest = ['ts-jest', { tsconfig: 'tsconfig.json', diagnostics: false }];
const common = {
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': tsJest },
  moduleFileExtensions: ['ts', 'js', 'json'],
};
module.exports = {
  // Renders take seconds on these 2-core machines; speed is measured by `npm run bench`, not here.
  testTimeout: 120000,
  // An in-process API stopped with a job of its embedded node in flight hands the job back and
  // leaves BullMQ a promise that never settles (see JobQueueRepository.startWorkers); the
  // worker's own timers then keep jest's process alive after the last test (the service's
  // processes exit through process.exit). Until the hand-back can settle cleanly: exit anyway.
  forceExit: true,
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/test/unit/**/*.spec.ts'] },
    { ...common, displayName: 'integration', testMatch: ['<rootDir>/test/integration/**/*.spec.ts'] },
  ],
};
