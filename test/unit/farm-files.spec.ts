import { checkGltfJson, detectKind, escapingExternalFiles, extOf, glbJsonChunk, normaliseFarmPath, pathProblem } from '../../src/farm/farm-paths';

describe('farm paths', () => {
  it('normalises relative paths', () => {
    expect(normaliseFarmPath('my_project.blend')).toBe('my_project.blend');
    expect(normaliseFarmPath('./asset//tex/./wood.png')).toBe('asset/tex/wood.png');
    expect(normaliseFarmPath('shot/lgt.blend/')).toBe('shot/lgt.blend');
  });

  it.each([
    ['/etc/passwd', /relative/],
    ['~/x.blend', /relative/],
    ['C:/scene.blend', /relative/],
    ['c:scene.blend', /relative/],
    ['a/../../b', /\.\./],
    ['..', /\.\./],
    ['a\\..\\b.blend', /backslash/],
    ['\\\\server\\share\\x', /backslash/],
    ['a\u0000.blend', /control/],
    ['a\nb', /control/],
    ['a\u202eb', /./], // bidi override is fine as a name: only controls are refused
    ['x'.repeat(1025), /longer than 1024/],
    [`${'y'.repeat(256)}/a`, /longer than 255/],
    ['a/b./c', /ends in a dot/],
    ['a/con?.png', /holds one of/],
    ['', /non-empty/],
    ['./', /names no file/],
  ])('refuses %j', (raw, why) => {
    const { path, problem } = pathProblem(raw);
    if (raw === 'a\u202eb') return expect(path).toBe(raw);
    expect(path).toBeUndefined();
    expect(problem).toMatch(why);
  });

  it('says which field was wrong in a 400', () => {
    expect(() => normaliseFarmPath({ $gt: '' }, 'path')).toThrow(expect.objectContaining({ kind: 'bad_input', details: [expect.objectContaining({ field: 'path' })] }));
  });

  it('takes plain extensions only, lower-cased', () => {
    expect(extOf('a/B.PNG')).toBe('png');
    expect(extOf('noext')).toBe('bin');
    expect(extOf('a.tar.gz')).toBe('gz');
    expect(extOf('a.p$ng')).toBe('bin');
  });
});

describe('kind detection from bytes', () => {
  const blend = Buffer.from('BLENDER-v304REND');
  it('knows a .blend by its header, whatever its name', () => {
    expect(detectKind('scene.blend', blend)).toEqual({ kind: 'blend' });
    expect(detectKind('scene.dat', blend)).toEqual({ kind: 'blend' });
  });

  it('refuses a .blend that is not one, and compressed ones (zstd as Blender 3 saves them, gzip as older ones) with a reason', () => {
    expect(() => detectKind('x.blend', Buffer.from('hello'))).toThrow(/not a \.blend/);
    expect(() => detectKind('x.blend', Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0, 0]))).toThrow(/compressed \.blend/);
    expect(() => detectKind('x.blend', Buffer.from([0x1f, 0x8b, 8, 0]))).toThrow(/compressed \.blend/);
  });

  it('knows GLB, zip and tar by their magic, and refuses names that lie', () => {
    expect(detectKind('m.glb', Buffer.from('glTF\x02\x00\x00\x00'))).toEqual({ kind: 'glb' });
    expect(() => detectKind('m.glb', Buffer.from('nope'))).toThrow(/binary glTF/);
    expect(detectKind('a.zip', Buffer.from([0x50, 0x4b, 3, 4]))).toEqual({ kind: 'archive', format: 'zip' });
    expect(() => detectKind('a.zip', Buffer.from('PK'))).toThrow(/not a zip/);
    const tar = Buffer.alloc(512);
    tar.write('ustar', 257, 'latin1');
    expect(detectKind('a.tar', tar)).toEqual({ kind: 'archive', format: 'tar' });
    expect(detectKind('tex/wood.png', Buffer.from([0x89, 0x50, 0x4e, 0x47]))).toEqual({ kind: 'asset' });
  });
});

describe('glTF checks', () => {
  function glb(json: object, lie = 0): Buffer {
    const body = Buffer.from(JSON.stringify(json));
    const padded = Buffer.concat([body, Buffer.alloc((4 - (body.length % 4)) % 4, 0x20)]);
    const header = Buffer.alloc(20);
    header.write('glTF', 0, 'latin1');
    header.writeUInt32LE(2, 4);
    header.writeUInt32LE(20 + padded.length + lie, 8);
    header.writeUInt32LE(padded.length, 12);
    header.writeUInt32LE(0x4e4f534a, 16);
    return Buffer.concat([header, padded]);
  }
  const good = { asset: { version: '2.0', generator: 'test' }, meshes: [{}, {}], nodes: [{}] };

  it('reads the JSON chunk of a GLB and counts meshes', () => {
    const file = glb(good);
    const chunk = glbJsonChunk(file.subarray(0, 20), file.length);
    expect(checkGltfJson(file.subarray(chunk.offset, chunk.offset + chunk.length).toString(), 'glb')).toEqual({ container: 'glb', meshes: 2, nodes: 1, generator: 'test', external: [] });
  });

  it('refuses a cut GLB, glTF 1, no mesh, and URIs that leave the folder or the machine', () => {
    const file = glb(good, 8);
    expect(() => glbJsonChunk(file.subarray(0, 20), file.length - 8 + 0)).toThrow(/does not match/);
    expect(() => checkGltfJson(JSON.stringify({ asset: { version: '1.0' }, meshes: [{}] }), 'gltf')).toThrow(/2\.x/);
    expect(() => checkGltfJson(JSON.stringify({ asset: { version: '2.0' } }), 'gltf')).toThrow(/no mesh/);
    expect(() => checkGltfJson(JSON.stringify({ ...good, buffers: [{ uri: '../secret.bin' }] }), 'gltf')).toThrow(/buffers\[0\]\.uri/);
    expect(() => checkGltfJson(JSON.stringify({ ...good, images: [{ uri: 'file:///etc/passwd' }] }), 'gltf')).toThrow(/images\[0\]\.uri/);
    expect(() => checkGltfJson(JSON.stringify({ ...good, buffers: [{ uri: '%2e%2e/x.bin' }] }), 'gltf')).toThrow(/\.\./);
    expect(checkGltfJson(JSON.stringify({ ...good, buffers: [{ uri: 'data:application/octet-stream;base64,AAAA' }, { uri: 'bin/m.bin' }] }), 'gltf').external).toEqual(['bin/m.bin']);
  });
});

describe('scene external files', () => {
  it('lists those that are absolute, not relative to the .blend, or climb out of its folder', () => {
    expect(
      escapingExternalFiles(['//tex/wood.png', '//./a/../b.png', '//../tex/x.png', '//a/../../x.png', '/abs/x.png', 'C:\\tex\\x.png', 'rel/x.png', '//C:/x.png', '']),
    ).toEqual(['//../tex/x.png', '//a/../../x.png', '/abs/x.png', 'C:\\tex\\x.png', 'rel/x.png', '//C:/x.png']);
  });
});
