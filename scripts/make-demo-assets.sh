#!/usr/bin/env bash
# Makes the demo templates' media from nothing but ffmpeg and sharp, so every byte in
# templates/demo is ours to ship. Run from the repository root; the outputs are committed.
set -euo pipefail
cd "$(dirname "$0")/.."
ff() { ffmpeg -hide_banner -loglevel error -y "$@"; }

# welcome: a portrait-ish placeholder photo and a music bed (a soft chord progression).
node - <<'JS'
const sharp = require('sharp');
const photo = `<svg xmlns="http://www.w3.org/2000/svg" width="1200" height="1200">
  <defs>
    <radialGradient id="sky" cx="0.3" cy="0.25" r="1"><stop offset="0" stop-color="#ffd29d"/><stop offset="1" stop-color="#c0392b"/></radialGradient>
    <linearGradient id="hill" x1="0" y1="0" x2="0" y2="1"><stop offset="0" stop-color="#2c3e50"/><stop offset="1" stop-color="#0b1320"/></linearGradient>
  </defs>
  <rect width="1200" height="1200" fill="url(#sky)"/>
  <circle cx="820" cy="360" r="150" fill="#fff3d6" opacity="0.9"/>
  <path d="M0 820 Q 300 620 600 800 T 1200 760 V1200 H0 Z" fill="url(#hill)"/>
  <path d="M0 940 Q 400 820 800 960 T 1200 920 V1200 H0 Z" fill="#070b12" opacity="0.85"/>
</svg>`;
sharp(Buffer.from(photo)).jpeg({ quality: 82 }).toFile('templates/demo/welcome/assets/photo.jpg');
const slides = [
  ['#1abc9c', '#16a085', 'M0 900 L400 500 L700 800 L1000 400 L1600 900 Z'],
  ['#3498db', '#2c3e50', 'M0 900 L300 650 L900 850 L1300 550 L1600 900 Z'],
  ['#e67e22', '#d35400', 'M0 900 L500 450 L800 700 L1200 500 L1600 900 Z'],
  ['#9b59b6', '#34495e', 'M0 900 L200 700 L600 500 L1100 750 L1600 900 Z'],
  ['#f1c40f', '#e74c3c', 'M0 900 L350 600 L750 750 L1150 450 L1600 900 Z'],
];
slides.forEach(([a, b, hills], i) => {
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="1600" height="900">
    <defs><linearGradient id="g" x1="0" y1="0" x2="0" y2="1"><stop offset="0" stop-color="${a}"/><stop offset="1" stop-color="${b}"/></linearGradient></defs>
    <rect width="1600" height="900" fill="url(#g)"/><circle cx="${300 + i * 220}" cy="220" r="90" fill="#ffffff" opacity="0.8"/>
    <path d="${hills}" fill="#000000" opacity="0.35"/></svg>`;
  sharp(Buffer.from(svg)).jpeg({ quality: 80 }).toFile(`templates/demo/slideshow/assets/slide${i + 1}.jpg`);
});
JS

# A 30 s music bed: three sine-based chords with a gentle tremolo, then AAC.
ff -f lavfi -i "aevalsrc='0.18*sin(2*PI*t*(220*if(lt(mod(t,8),4),1,0.8909)))*(0.7+0.3*sin(2*PI*t*2))+0.12*sin(2*PI*t*(277.18*if(lt(mod(t,8),4),1,0.8909)))+0.1*sin(2*PI*t*(329.63*if(lt(mod(t,8),4),1,1.0595)))|0.18*sin(2*PI*t*(220*if(lt(mod(t,8),4),1,0.8909)))*(0.7+0.3*cos(2*PI*t*2))+0.12*sin(2*PI*t*(277.18*if(lt(mod(t,8),4),1,0.8909)))+0.1*sin(2*PI*t*(329.63*if(lt(mod(t,8),4),1,1.0595)))':s=48000:d=30" \
  -af "afade=t=in:d=1,afade=t=out:st=28:d=2,lowpass=f=3000" -c:a aac -b:a 96k templates/demo/welcome/assets/music.m4a
cp templates/demo/welcome/assets/music.m4a templates/demo/slideshow/assets/music.m4a

# lower-third: an 8 s 1280×720 clip with motion (drifting colour field) and a tone on its audio.
ff -f lavfi -i "gradients=s=1280x720:c0=0x203a43:c1=0x2c5364:c2=0x0f2027:x0=0:y0=0:x1=1280:y1=720:speed=0.02:d=8:r=30" \
   -f lavfi -i "sine=f=330:sample_rate=48000:d=8" \
   -f lavfi -i "color=c=0xf39c12:s=120x120:r=30:d=8" \
   -filter_complex "[0:v][2:v]overlay=x='mod(t*160,1280)':y=300" \
   -c:v libx264 -preset veryfast -crf 26 -pix_fmt yuv420p -c:a aac -b:a 64k -shortest -movflags +faststart \
   templates/demo/lower-third/assets/clip.mp4

# promo: a studio shot of a (drawn) pair of headphones, and a 12 s beat with a bass line.
node - <<'JS'
const sharp = require('sharp');
const photo = `<svg xmlns="http://www.w3.org/2000/svg" width="1000" height="1250">
  <defs>
    <radialGradient id="studio" cx="0.5" cy="0.38" r="0.8"><stop offset="0" stop-color="#ffe3c2"/><stop offset="0.55" stop-color="#f29e7c"/><stop offset="1" stop-color="#7a3558"/></radialGradient>
    <linearGradient id="band" x1="0" y1="0" x2="1" y2="0"><stop offset="0" stop-color="#1c1f2b"/><stop offset="0.5" stop-color="#3a3f55"/><stop offset="1" stop-color="#1c1f2b"/></linearGradient>
    <linearGradient id="cup" x1="0" y1="0" x2="1" y2="1"><stop offset="0" stop-color="#4a5070"/><stop offset="1" stop-color="#141723"/></linearGradient>
    <radialGradient id="shine" cx="0.35" cy="0.3" r="0.6"><stop offset="0" stop-color="#ffffff" stop-opacity="0.55"/><stop offset="1" stop-color="#ffffff" stop-opacity="0"/></radialGradient>
    <filter id="soft"><feGaussianBlur stdDeviation="28"/></filter>
  </defs>
  <rect width="1000" height="1250" fill="url(#studio)"/>
  <ellipse cx="500" cy="985" rx="360" ry="48" fill="#3b1530" opacity="0.45" filter="url(#soft)"/>
  <path d="M250 640 C 250 300, 750 300, 750 640" fill="none" stroke="url(#band)" stroke-width="58" stroke-linecap="round"/>
  <path d="M262 620 C 262 330, 738 330, 738 620" fill="none" stroke="#ffffff" stroke-opacity="0.18" stroke-width="10" stroke-linecap="round"/>
  <rect x="160" y="580" width="190" height="330" rx="90" fill="url(#cup)"/>
  <rect x="650" y="580" width="190" height="330" rx="90" fill="url(#cup)"/>
  <rect x="318" y="610" width="52" height="270" rx="26" fill="#0d0f17"/>
  <rect x="630" y="610" width="52" height="270" rx="26" fill="#0d0f17"/>
  <rect x="160" y="580" width="190" height="330" rx="90" fill="url(#shine)"/>
  <rect x="650" y="580" width="190" height="330" rx="90" fill="url(#shine)"/>
  <circle cx="255" cy="745" r="34" fill="none" stroke="#ff8a5c" stroke-width="6" opacity="0.9"/>
  <circle cx="745" cy="745" r="34" fill="none" stroke="#ff8a5c" stroke-width="6" opacity="0.9"/>
</svg>`;
sharp(Buffer.from(photo)).jpeg({ quality: 80 }).toFile('templates/demo/promo/assets/product.jpg');
JS
# 12 s at 112 bpm: a kick on every beat, a hat on the off-beats and a two-note bass, as sines and noise.
ff -f lavfi -i "aevalsrc='0.5*sin(2*PI*55*mod(t,60/112))*exp(-18*mod(t,60/112))+0.05*(random(0)*2-1)*exp(-60*mod(t+30/112,60/112))+0.14*sin(2*PI*t*if(lt(mod(t,60/112*8),60/112*4),110,82.41))*(0.6+0.4*exp(-6*mod(t,60/112)))+0.05*sin(2*PI*t*440*if(lt(mod(t,60/112*8),60/112*4),1,0.7492))':s=48000:c=stereo:d=12" \
  -af "afade=t=in:d=0.3,afade=t=out:st=10.5:d=1.5,lowpass=f=6000" -c:a aac -b:a 96k templates/demo/promo/assets/music.m4a

ls -la templates/demo/*/assets
