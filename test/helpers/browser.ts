/** Real-browser playback checks, shared with the bench (which the build compiles; test/ it does not): see bench/browser.ts. */
export * from '../../bench/browser';
