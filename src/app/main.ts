import { mount } from 'svelte';
import App from './App.svelte';
import './app.css';
import { lab } from './lab.svelte.ts';
import { reportViolations } from './lib/content-security-policy.ts';

reportViolations(document, (text) => lab.notice('warn', `${text}: this page's policy blocked it.`));

mount(App, { target: document.getElementById('app')! });
