// @ts-check
const js = require('@eslint/js');
const tseslint = require('typescript-eslint');

module.exports = tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'data/', 'coverage/', 'bench/results/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { require: 'readonly', module: 'writable', __dirname: 'readonly', process: 'readonly', console: 'readonly', Buffer: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-require-imports': 'off',
    },
  },
  {
    // The studio's page scripts: ES modules run by the browser, no build step.
    files: ['src/studio/static/**/*.js'],
    languageOptions: { sourceType: 'module', globals: require('globals').browser },
  },
  {
    // The repository rule: external systems only through src/repositories/.
    files: ['src/**/*.ts'],
    ignores: ['src/repositories/**', 'src/main.ts', 'src/cli/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: ['sharp', 'fluent-ffmpeg', 'bullmq', 'mongoose', 'ioredis', '@seald-io/nedb', '@aws-sdk/client-s3', 'fs', 'node:fs', 'fs/promises', 'node:fs/promises', 'node:http', 'node:https', 'child_process', 'node:child_process'].map((name) => ({
            name,
            message: 'External systems are wrapped in src/repositories/; inject the repository instead.',
          })),
        },
      ],
    },
  },
);
