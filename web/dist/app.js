/* chirp web client, bundled from web/*.js by web/build/build.mjs (esbuild); source map: app.js.map. Includes Preact (MIT) and htm (Apache-2.0): web/vendor/LICENSE-preact, web/vendor/LICENSE-htm */
var ce,y,qe,ee,We,Ce,Lt,ie={},Ge=[],Pt=/acit|ex(?:s|g|n|p|$)|rph|grid|ows|mnc|ntw|ine[ch]|zoo|^ord|itera/i;function W(e,t){for(var n in t)e[n]=t[n];return e}function je(e){var t=e.parentNode;t&&t.removeChild(e)}function Be(e,t,n){var o,r,a,i={};for(a in t)a=="key"?o=t[a]:a=="ref"?r=t[a]:i[a]=t[a];if(arguments.length>2&&(i.children=arguments.length>3?ce.call(arguments,2):n),typeof e=="function"&&e.defaultProps!=null)for(a in e.defaultProps)i[a]===void 0&&(i[a]=e.defaultProps[a]);return re(e,i,o,r,null)}function re(e,t,n,o,r){var a={type:e,props:t,key:n,ref:o,__k:null,__:null,__b:0,__e:null,__d:void 0,__c:null,__h:null,constructor:void 0,__v:r??++qe};return y.vnode!=null&&y.vnode(a),a}function ue(e){return e.children}function ae(e,t){this.props=e,this.context=t}function J(e,t){if(t==null)return e.__?J(e.__,e.__.__k.indexOf(e)+1):null;for(var n;t<e.__k.length;t++)if((n=e.__k[t])!=null&&n.__e!=null)return n.__e;return typeof e.type=="function"?J(e):null}function Ve(e){var t,n;if((e=e.__)!=null&&e.__c!=null){for(e.__e=e.__c.base=null,t=0;t<e.__k.length;t++)if((n=e.__k[t])!=null&&n.__e!=null){e.__e=e.__c.base=n.__e;break}return Ve(e)}}function Le(e){(!e.__d&&(e.__d=!0)&&ee.push(e)&&!le.__r++||Ce!==y.debounceRendering)&&((Ce=y.debounceRendering)||We)(le)}function le(){for(var e;le.__r=ee.length;)e=ee.sort(function(t,n){return t.__v.__b-n.__v.__b}),ee=[],e.some(function(t){var n,o,r,a,i,l;t.__d&&(i=(a=(n=t).__v).__e,(l=n.__P)&&(o=[],(r=W({},a)).__v=a.__v+1,ge(l,a,r,n.__n,l.ownerSVGElement!==void 0,a.__h!=null?[i]:null,o,i??J(a),a.__h),Je(o,a),a.__e!=i&&Ve(a)))})}function ze(e,t,n,o,r,a,i,l,c,_){var s,h,p,f,d,w,m,v=o&&o.__k||Ge,g=v.length;for(n.__k=[],s=0;s<t.length;s++)if((f=n.__k[s]=(f=t[s])==null||typeof f=="boolean"?null:typeof f=="string"||typeof f=="number"||typeof f=="bigint"?re(null,f,null,null,f):Array.isArray(f)?re(ue,{children:f},null,null,null):f.__b>0?re(f.type,f.props,f.key,null,f.__v):f)!=null){if(f.__=n,f.__b=n.__b+1,(p=v[s])===null||p&&f.key==p.key&&f.type===p.type)v[s]=void 0;else for(h=0;h<g;h++){if((p=v[h])&&f.key==p.key&&f.type===p.type){v[h]=void 0;break}p=null}ge(e,f,p=p||ie,r,a,i,l,c,_),d=f.__e,(h=f.ref)&&p.ref!=h&&(m||(m=[]),p.ref&&m.push(p.ref,null,f),m.push(h,f.__c||d,f)),d!=null?(w==null&&(w=d),typeof f.type=="function"&&f.__k!=null&&f.__k===p.__k?f.__d=c=Ke(f,c,e):c=Ye(e,f,p,v,d,c),_||n.type!=="option"?typeof n.type=="function"&&(n.__d=c):e.value=""):c&&p.__e==c&&c.parentNode!=e&&(c=J(p))}for(n.__e=w,s=g;s--;)v[s]!=null&&(typeof n.type=="function"&&v[s].__e!=null&&v[s].__e==n.__d&&(n.__d=J(o,s+1)),Ze(v[s],v[s]));if(m)for(s=0;s<m.length;s++)Xe(m[s],m[++s],m[++s])}function Ke(e,t,n){var o,r;for(o=0;o<e.__k.length;o++)(r=e.__k[o])&&(r.__=e,t=typeof r.type=="function"?Ke(r,t,n):Ye(n,r,r,e.__k,r.__e,t));return t}function Ye(e,t,n,o,r,a){var i,l,c;if(t.__d!==void 0)i=t.__d,t.__d=void 0;else if(n==null||r!=a||r.parentNode==null)e:if(a==null||a.parentNode!==e)e.appendChild(r),i=null;else{for(l=a,c=0;(l=l.nextSibling)&&c<o.length;c+=2)if(l==r)break e;e.insertBefore(r,a),i=a}return i!==void 0?i:r.nextSibling}function Pe(e,t,n){t[0]==="-"?e.setProperty(t,n):e[t]=n==null?"":typeof n!="number"||Pt.test(t)?n:n+"px"}function oe(e,t,n,o,r){var a;e:if(t==="style")if(typeof n=="string")e.style.cssText=n;else{if(typeof o=="string"&&(e.style.cssText=o=""),o)for(t in o)n&&t in n||Pe(e.style,t,"");if(n)for(t in n)o&&n[t]===o[t]||Pe(e.style,t,n[t])}else if(t[0]==="o"&&t[1]==="n")a=t!==(t=t.replace(/Capture$/,"")),t=t.toLowerCase()in e?t.toLowerCase().slice(2):t.slice(2),e.l||(e.l={}),e.l[t+a]=n,n?o||e.addEventListener(t,a?Ue:Ae,a):e.removeEventListener(t,a?Ue:Ae,a);else if(t!=="dangerouslySetInnerHTML"){if(r)t=t.replace(/xlink[H:h]/,"h").replace(/sName$/,"s");else if(t!=="href"&&t!=="list"&&t!=="form"&&t!=="tabIndex"&&t!=="download"&&t in e)try{e[t]=n??"";break e}catch{}typeof n=="function"||(n!=null&&(n!==!1||t[0]==="a"&&t[1]==="r")?e.setAttribute(t,n):e.removeAttribute(t))}}function Ae(e){this.l[e.type+!1](y.event?y.event(e):e)}function Ue(e){this.l[e.type+!0](y.event?y.event(e):e)}function ge(e,t,n,o,r,a,i,l,c){var _,s,h,p,f,d,w,m,v,g,L,b=t.type;if(t.constructor!==void 0)return null;n.__h!=null&&(c=n.__h,l=t.__e=n.__e,t.__h=null,a=[l]),(_=y.__b)&&_(t);try{e:if(typeof b=="function"){if(m=t.props,v=(_=b.contextType)&&o[_.__c],g=_?v?v.props.value:_.__:o,n.__c?w=(s=t.__c=n.__c).__=s.__E:("prototype"in b&&b.prototype.render?t.__c=s=new b(m,g):(t.__c=s=new ae(m,g),s.constructor=b,s.render=Ut),v&&v.sub(s),s.props=m,s.state||(s.state={}),s.context=g,s.__n=o,h=s.__d=!0,s.__h=[]),s.__s==null&&(s.__s=s.state),b.getDerivedStateFromProps!=null&&(s.__s==s.state&&(s.__s=W({},s.__s)),W(s.__s,b.getDerivedStateFromProps(m,s.__s))),p=s.props,f=s.state,h)b.getDerivedStateFromProps==null&&s.componentWillMount!=null&&s.componentWillMount(),s.componentDidMount!=null&&s.__h.push(s.componentDidMount);else{if(b.getDerivedStateFromProps==null&&m!==p&&s.componentWillReceiveProps!=null&&s.componentWillReceiveProps(m,g),!s.__e&&s.shouldComponentUpdate!=null&&s.shouldComponentUpdate(m,s.__s,g)===!1||t.__v===n.__v){s.props=m,s.state=s.__s,t.__v!==n.__v&&(s.__d=!1),s.__v=t,t.__e=n.__e,t.__k=n.__k,t.__k.forEach(function(R){R&&(R.__=t)}),s.__h.length&&i.push(s);break e}s.componentWillUpdate!=null&&s.componentWillUpdate(m,s.__s,g),s.componentDidUpdate!=null&&s.__h.push(function(){s.componentDidUpdate(p,f,d)})}s.context=g,s.props=m,s.state=s.__s,(_=y.__r)&&_(t),s.__d=!1,s.__v=t,s.__P=e,_=s.render(s.props,s.state,s.context),s.state=s.__s,s.getChildContext!=null&&(o=W(W({},o),s.getChildContext())),h||s.getSnapshotBeforeUpdate==null||(d=s.getSnapshotBeforeUpdate(p,f)),L=_!=null&&_.type===ue&&_.key==null?_.props.children:_,ze(e,Array.isArray(L)?L:[L],t,n,o,r,a,i,l,c),s.base=t.__e,t.__h=null,s.__h.length&&i.push(s),w&&(s.__E=s.__=null),s.__e=!1}else a==null&&t.__v===n.__v?(t.__k=n.__k,t.__e=n.__e):t.__e=At(n.__e,t,n,o,r,a,i,c);(_=y.diffed)&&_(t)}catch(R){t.__v=null,(c||a!=null)&&(t.__e=l,t.__h=!!c,a[a.indexOf(l)]=null),y.__e(R,t,n)}}function Je(e,t){y.__c&&y.__c(t,e),e.some(function(n){try{e=n.__h,n.__h=[],e.some(function(o){o.call(n)})}catch(o){y.__e(o,n.__v)}})}function At(e,t,n,o,r,a,i,l){var c,_,s,h=n.props,p=t.props,f=t.type,d=0;if(f==="svg"&&(r=!0),a!=null){for(;d<a.length;d++)if((c=a[d])&&(c===e||(f?c.localName==f:c.nodeType==3))){e=c,a[d]=null;break}}if(e==null){if(f===null)return document.createTextNode(p);e=r?document.createElementNS("http://www.w3.org/2000/svg",f):document.createElement(f,p.is&&p),a=null,l=!1}if(f===null)h===p||l&&e.data===p||(e.data=p);else{if(a=a&&ce.call(e.childNodes),_=(h=n.props||ie).dangerouslySetInnerHTML,s=p.dangerouslySetInnerHTML,!l){if(a!=null)for(h={},d=0;d<e.attributes.length;d++)h[e.attributes[d].name]=e.attributes[d].value;(s||_)&&(s&&(_&&s.__html==_.__html||s.__html===e.innerHTML)||(e.innerHTML=s&&s.__html||""))}if((function(w,m,v,g,L){var b;for(b in v)b==="children"||b==="key"||b in m||oe(w,b,null,v[b],g);for(b in m)L&&typeof m[b]!="function"||b==="children"||b==="key"||b==="value"||b==="checked"||v[b]===m[b]||oe(w,b,m[b],v[b],g)})(e,p,h,r,l),s)t.__k=[];else if(d=t.props.children,ze(e,Array.isArray(d)?d:[d],t,n,o,r&&f!=="foreignObject",a,i,a?a[0]:n.__k&&J(n,0),l),a!=null)for(d=a.length;d--;)a[d]!=null&&je(a[d]);l||("value"in p&&(d=p.value)!==void 0&&(d!==e.value||f==="progress"&&!d)&&oe(e,"value",d,h.value,!1),"checked"in p&&(d=p.checked)!==void 0&&d!==e.checked&&oe(e,"checked",d,h.checked,!1))}return e}function Xe(e,t,n){try{typeof e=="function"?e(t):e.current=t}catch(o){y.__e(o,n)}}function Ze(e,t,n){var o,r;if(y.unmount&&y.unmount(e),(o=e.ref)&&(o.current&&o.current!==e.__e||Xe(o,null,t)),(o=e.__c)!=null){if(o.componentWillUnmount)try{o.componentWillUnmount()}catch(a){y.__e(a,t)}o.base=o.__P=null}if(o=e.__k)for(r=0;r<o.length;r++)o[r]&&Ze(o[r],t,typeof e.type!="function");n||e.__e==null||je(e.__e),e.__e=e.__d=void 0}function Ut(e,t,n){return this.constructor(e,n)}function Qe(e,t,n){var o,r,a;y.__&&y.__(e,t),r=(o=typeof n=="function")?null:n&&n.__k||t.__k,a=[],ge(t,e=(!o&&n||t).__k=Be(ue,null,[e]),r||ie,ie,t.ownerSVGElement!==void 0,!o&&n?[n]:r?null:t.firstChild?ce.call(t.childNodes):null,a,!o&&n?n:r?r.__e:t.firstChild,o),Je(a,e)}ce=Ge.slice,y={__e:function(e,t){for(var n,o,r;t=t.__;)if((n=t.__c)&&!n.__)try{if((o=n.constructor)&&o.getDerivedStateFromError!=null&&(n.setState(o.getDerivedStateFromError(e)),r=n.__d),n.componentDidCatch!=null&&(n.componentDidCatch(e),r=n.__d),r)return n.__E=n}catch(a){e=a}throw e}},qe=0,ae.prototype.setState=function(e,t){var n;n=this.__s!=null&&this.__s!==this.state?this.__s:this.__s=W({},this.state),typeof e=="function"&&(e=e(W({},n),this.props)),e&&W(n,e),e!=null&&this.__v&&(t&&this.__h.push(t),Le(this))},ae.prototype.forceUpdate=function(e){this.__v&&(this.__e=!0,e&&this.__h.push(e),Le(this))},ae.prototype.render=ue,ee=[],We=typeof Promise=="function"?Promise.prototype.then.bind(Promise.resolve()):setTimeout,le.__r=0,Lt=0;var de,N,Me,te=0,$e=[],Re=y.__b,Ne=y.__r,De=y.diffed,He=y.__c,Fe=y.unmount;function ye(e,t){y.__h&&y.__h(N,e,te||t),te=0;var n=N.__H||(N.__H={__:[],__h:[]});return e>=n.__.length&&n.__.push({}),n.__[e]}function $(e){return te=1,Mt(nt,e)}function Mt(e,t,n){var o=ye(de++,2);return o.t=e,o.__c||(o.__=[n?n(t):nt(void 0,t),function(r){var a=o.t(o.__[0],r);o.__[0]!==a&&(o.__=[a,o.__[1]],o.__c.setState({}))}],o.__c=N),o.__}function P(e,t){var n=ye(de++,3);!y.__s&&tt(n.__H,t)&&(n.__=e,n.__H=t,N.__H.__h.push(n))}function I(e){return te=5,et(function(){return{current:e}},[])}function et(e,t){var n=ye(de++,7);return tt(n.__H,t)&&(n.__=e(),n.__H=t,n.__h=e),n.__}function H(e,t){return te=8,et(function(){return e},t)}function Rt(){$e.forEach(function(e){if(e.__P)try{e.__H.__h.forEach(se),e.__H.__h.forEach(ve),e.__H.__h=[]}catch(t){e.__H.__h=[],y.__e(t,e.__v)}}),$e=[]}y.__b=function(e){N=null,Re&&Re(e)},y.__r=function(e){Ne&&Ne(e),de=0;var t=(N=e.__c).__H;t&&(t.__h.forEach(se),t.__h.forEach(ve),t.__h=[])},y.diffed=function(e){De&&De(e);var t=e.__c;t&&t.__H&&t.__H.__h.length&&($e.push(t)!==1&&Me===y.requestAnimationFrame||((Me=y.requestAnimationFrame)||function(n){var o,r=function(){clearTimeout(a),Oe&&cancelAnimationFrame(o),setTimeout(n)},a=setTimeout(r,100);Oe&&(o=requestAnimationFrame(r))})(Rt)),N=void 0},y.__c=function(e,t){t.some(function(n){try{n.__h.forEach(se),n.__h=n.__h.filter(function(o){return!o.__||ve(o)})}catch(o){t.some(function(r){r.__h&&(r.__h=[])}),t=[],y.__e(o,n.__v)}}),He&&He(e,t)},y.unmount=function(e){Fe&&Fe(e);var t=e.__c;if(t&&t.__H)try{t.__H.__.forEach(se)}catch(n){y.__e(n,t.__v)}};var Oe=typeof requestAnimationFrame=="function";function se(e){var t=N;typeof e.__c=="function"&&e.__c(),N=t}function ve(e){var t=N;e.__c=e.__(),N=t}function tt(e,t){return!e||e.length!==t.length||t.some(function(n,o){return n!==e[o]})}function nt(e,t){return typeof t=="function"?t(e):t}var ot=function(e,t,n,o){var r;t[0]=0;for(var a=1;a<t.length;a++){var i=t[a++],l=t[a]?(t[0]|=i?1:2,n[t[a++]]):t[++a];i===3?o[0]=l:i===4?o[1]=Object.assign(o[1]||{},l):i===5?(o[1]=o[1]||{})[t[++a]]=l:i===6?o[1][t[++a]]+=l+"":i?(r=e.apply(l,ot(e,l,n,["",null])),o.push(r),l[0]?t[0]|=2:(t[a-2]=0,t[a]=r)):o.push(l)}return o},Ie=new Map,u=function(e){var t=Ie.get(this);return t||(t=new Map,Ie.set(this,t)),(t=ot(this,t.get(e)||(t.set(e,t=(function(n){for(var o,r,a=1,i="",l="",c=[0],_=function(p){a===1&&(p||(i=i.replace(/^\s*\n\s*|\s*\n\s*$/g,"")))?c.push(0,p,i):a===3&&(p||i)?(c.push(3,p,i),a=2):a===2&&i==="..."&&p?c.push(4,p,0):a===2&&i&&!p?c.push(5,0,!0,i):a>=5&&((i||!p&&a===5)&&(c.push(a,0,i,r),a=6),p&&(c.push(a,p,0,r),a=6)),i=""},s=0;s<n.length;s++){s&&(a===1&&_(),_(s));for(var h=0;h<n[s].length;h++)o=n[s][h],a===1?o==="<"?(_(),c=[c],a=3):i+=o:a===4?i==="--"&&o===">"?(a=1,i=""):i=o+i[0]:l?o===l?l="":i+=o:o==='"'||o==="'"?l=o:o===">"?(_(),a=1):a&&(o==="="?(a=5,r=i,i=""):o==="/"&&(a<5||n[s][h+1]===">")?(_(),a===3&&(c=c[0]),a=c,(c=c[0]).push(2,0,a),a=0):o===" "||o==="	"||o===`
`||o==="\r"?(_(),a=2):i+=o),a===3&&i==="!--"&&(a=4,c=c[0])}return _(),c})(e)),t),arguments,[])).length>1?t:t[0]}.bind(Be);var at="/api/v1",ne=null,be=new Set;function pe(e){ne=e}function st(e){return be.add(e),()=>be.delete(e)}var j=class extends Error{constructor(t,n,o){super(n.detail||`HTTP ${t}`),this.status=t,this.code=n.code||(t===0?"network":"http_"+t),this.errors=n.errors||null,this.retryAfter=o?Number(o):null}};function it(e,t){t===401&&!e.startsWith("/session")&&e!=="/login"&&be.forEach(n=>n())}async function E(e,t,n,{signal:o}={}){let r={};e!=="GET"&&(r.accept="application/json"),e!=="GET"&&ne&&(r["x-csrf-token"]=ne);let a={method:e,headers:r,credentials:"same-origin",signal:o};n!==void 0&&(r["content-type"]="application/json",a.body=JSON.stringify(n));let i;try{i=await fetch(at+t,a)}catch(c){throw c.name==="AbortError"?c:new j(0,{detail:"network error"})}if(i.status===204)return null;let l=await i.json().catch(()=>null);if(!i.ok)throw it(t,i.status),new j(i.status,l||{},i.headers.get("retry-after"));return l}function we(e){let t=E("GET",e);return t.catch(()=>{}),t}function rt(e,t,n,o){return new Promise((r,a)=>{let i=new XMLHttpRequest;i.open(e,at+t),i.setRequestHeader("accept","application/json"),ne&&i.setRequestHeader("x-csrf-token",ne),i.upload.onprogress=l=>{l.lengthComputable&&o(l.loaded/l.total)},i.onload=()=>{let l=null;try{l=JSON.parse(i.responseText)}catch{}i.status>=200&&i.status<300?r(l):(it(t,i.status),a(new j(i.status,l||{},i.getResponseHeader("retry-after"))))},i.onerror=()=>a(new j(0,{detail:"network error"})),i.send(n)})}var G=e=>{let t=new URLSearchParams;for(let[o,r]of Object.entries(e))r!=null&&r!==""&&t.set(o,r);let n=t.toString();return n?"?"+n:""},x={session:()=>E("GET","/session"),login:(e,t)=>E("POST","/session",{username:e,password:t}),logout:()=>E("DELETE","/session"),register:e=>E("POST","/register",e),verify:(e,t)=>E("POST","/session/verify-register",{email:e,code:t}),timeline:e=>E("GET","/timeline"+G({cursor:e})),timelinePath:"/timeline",tweetsBy:(e,t)=>E("GET","/tweet"+G({author_id:e,cursor:t})),searchTweets:(e,t)=>E("GET","/tweet"+G({search:e,cursor:t})),searchUsers:(e,t)=>E("GET","/user"+G({search:e,cursor:t})),post:e=>E("POST","/tweet",{content:e}),postWithMedia:(e,t)=>rt("POST","/tweet",e,t),deleteTweet:e=>E("DELETE",`/tweet/${e}`),like:e=>E("POST",`/tweet/${e}/like`),unlike:e=>E("DELETE",`/tweet/${e}/unlike`),view:e=>E("PATCH",`/tweet/${e}/views`),user:e=>E("GET",`/user/${e}`),lookup:e=>E("GET","/user/lookup"+G({username:e})),follow:e=>E("POST",`/user/${e}/follow`),unfollow:e=>E("DELETE",`/user/${e}/unfollow`),followers:(e,t)=>E("GET",`/user/${e}/followers`+G({cursor:t})),followings:(e,t)=>E("GET",`/user/${e}/followings`+G({cursor:t})),updateMe:e=>E("PATCH","/me",e),setAvatar:(e,t)=>rt("PUT","/me/avatar",e,t),removeAvatar:()=>E("DELETE","/me/avatar"),notifications:e=>E("GET","/notifications"+G({cursor:e})),unreadCount:()=>E("GET","/notifications/unread-count"),markRead:e=>E("POST","/notifications/read",e?{ids:e}:{})};var lt=new Map;function ct(e){let t=JSON.stringify(e),n=lt.get(t);return n||lt.set(t,n=new Intl.DateTimeFormat(void 0,e)),n}var Nt={month:"short",day:"numeric"},Dt={year:"numeric",month:"short",day:"numeric"},Ht={year:"numeric",month:"numeric",day:"numeric",hour:"numeric",minute:"numeric",second:"numeric"};function ut(e,t=Date.now()){let n=Date.parse(e);if(Number.isNaN(n))return"";let o=Math.max(0,Math.round((t-n)/1e3));if(o<10)return"now";if(o<60)return`${o}s`;if(o<3600)return`${Math.floor(o/60)}m`;if(o<86400)return`${Math.floor(o/3600)}h`;if(o<7*86400)return`${Math.floor(o/86400)}d`;let r=new Date(n),a=r.getFullYear()===new Date(t).getFullYear();return ct(a?Nt:Dt).format(r)}function dt(e){let t=new Date(e);return Number.isNaN(t.getTime())?"":ct(Ht).format(t)}function B(e){return e=Number(e)||0,e<1e3?String(e):e<1e6?(e/1e3).toFixed(e<1e4?1:0).replace(/\.0$/,"")+"K":(e/1e6).toFixed(1).replace(/\.0$/,"")+"M"}var ke=(e,t,n=t+"s")=>`${B(e)} ${Number(e)===1?t:n}`,fe=e=>[...e].length;function pt(e,t){return e.length!==t.length?e.length>t.length:e>t}var Ft={network:"Cannot reach chirp. Check your connection and try again.",validation_failed:"Some fields need fixing.",username_taken:"That username is taken. Choose another one.",email_taken:"An account with this email already exists. Log in instead.",invalid_code:"That code is wrong or has expired. Check the latest email, or start over to get a new code.",too_many_attempts:"Too many wrong codes: this sign-up is void. Start over to get a new code.",invalid_credentials:"Wrong username or password.",rate_limited:"Too many attempts from your network.",unauthorized:"Your session has ended. Log in again.",csrf_failed:"This request could not be verified as coming from this page. Reload the page and try again.",forbidden:"You are not allowed to do that.",not_found:"Not found: it may have been deleted.",cannot_follow_self:"You cannot follow yourself.",unsupported_media_type:"That file type is not supported. Use JPEG, PNG, GIF or WebP images, or MP4, MOV or WebM video.",invalid_media:"That file could not be read as an image or video. It may be damaged.",payload_too_large:"That file is too large (images up to 16 MB, videos up to 100 MB).",malformed_json:"The request was malformed. Reload the page and try again.",malformed_multipart:"The upload was interrupted or malformed. Try again.",service_unavailable:"chirp is briefly unavailable. Try again in a few seconds.",internal_error:"Something went wrong on our side. Try again.",request_timeout:"That took too long. Try again."};function ft(e){if(!e)return"";let t=Ft[e.code]||e.message||"Something went wrong.";return e.code==="validation_failed"&&e.errors&&(t=t.replace(/\.$/,": ")+Object.entries(e.errors).map(([n,o])=>`${n}: ${[].concat(o).join(", ")}`).join("; ")+"."),(e.code==="rate_limited"||e.code==="too_many_attempts")&&e.retryAfter&&(t+=` Try again in ${e.retryAfter} second${e.retryAfter===1?"":"s"}.`),t}function X(e){let t={};if(e&&e.errors)for(let[n,o]of Object.entries(e.errors))t[n]=[].concat(o).join("; ");return t}function F(e,{replace:t=!1}={}){e!==location.pathname+location.search&&(history[t?"replaceState":"pushState"](null,"",e),dispatchEvent(new PopStateEvent("popstate")),window.scrollTo(0,0))}function A({href:e,children:t,...n}){return u`<a href=${e} onClick=${r=>{r.defaultPrevented||r.button!==0||r.metaKey||r.ctrlKey||r.shiftKey||r.altKey||(r.preventDefault(),F(e))}} ...${n}>${t}</a>`}function q({user:e,size:t=48}){let n=`avatar avatar-${t}`;return e.avatar_url?u`<img class=${n} src=${e.avatar_url} alt="" width=${t} height=${t} loading="lazy" />`:u`<span class=${n+" avatar-letter"} aria-hidden="true">${(e.name||e.username||"?").trim().charAt(0).toUpperCase()}</span>`}function D({error:e,message:t}){let n=t||ft(e);return n?u`<p class="alert" role="alert">${n}</p>`:null}function Se({iso:e}){let[,t]=$(0);return P(()=>{let o=setInterval(()=>t(r=>r+1),3e4);return()=>clearInterval(o)},[]),u`<time datetime=${e} onMouseEnter=${o=>{o.currentTarget.title=dt(e)}}>${ut(e)}</time>`}var _e=new Set,xe=new Map,he="IntersectionObserver"in window?new IntersectionObserver(e=>{for(let t of e){if(!t.isIntersecting)continue;let n=xe.get(t.target);he.unobserve(t.target),!(!n||_e.has(n.id))&&(_e.add(n.id),x.view(n.id).then(o=>n.update(o.view_count)).catch(()=>_e.delete(n.id)))}},{threshold:.5}):null;function Ot(e,t,n){P(()=>{let o=t.current;if(!(!o||!he||_e.has(e)))return xe.set(o,{id:e,update:n}),he.observe(o),()=>{he.unobserve(o),xe.delete(o)}},[e])}function It({media:e,onClose:t}){let n=I();return P(()=>{let o=n.current;o&&!o.open&&o.showModal();let r=()=>t();return o.addEventListener("close",r),()=>o.removeEventListener("close",r)},[]),u`<dialog class="lightbox" ref=${n} aria-label="Image" onClick=${o=>{o.target===n.current&&n.current.close()}}>
    <img src=${e.url} alt=${e.description||"Image"} />
    <form method="dialog"><button class="button" autofocus>Close</button></form>
  </dialog>`}function qt({media:e}){let[t,n]=$(null);if(!e||e.length===0)return null;let o=e.filter(r=>r.kind==="image");return u`<div class=${"media-grid media-"+Math.min(e.length,4)}>
    ${e.map(r=>r.kind==="image"?u`<button type="button" class="media-item" key=${r.id} onClick=${()=>n(r)}
          aria-label=${"Open image"+(o.length>1?` ${o.indexOf(r)+1} of ${o.length}`:"")+(r.description?": "+r.description:"")}>
          <img src=${r.thumbnail_url||r.url} alt=${r.description||""} width=${r.width||void 0} height=${r.height||void 0} loading="lazy" />
        </button>`:r.kind==="gifv"?u`<video class="media-item" key=${r.id} src=${r.url} poster=${r.thumbnail_url||void 0} autoplay loop muted playsinline aria-label=${r.description||"Animated image"}></video>`:u`<video class="media-item" key=${r.id} src=${r.url} poster=${r.thumbnail_url||void 0} controls preload="metadata" playsinline aria-label=${r.description||"Video"}></video>`)}
    ${t&&u`<${It} media=${t} onClose=${()=>n(null)} />`}
  </div>`}function me({tweet:e,me:t,onDeleted:n}){let[o,r]=$(e),[a,i]=$(null),l=I();P(()=>r(e),[e]),Ot(e.id,l,p=>r(f=>({...f,view_count:Math.max(f.view_count,p)})));let c=async()=>{let p=!o.liked_by_me;i(null),r(f=>({...f,liked_by_me:p,like_count:Math.max(0,f.like_count+(p?1:-1))}));try{if(p){let f=await x.like(o.id);r(d=>({...d,like_count:f.like_count,liked_by_me:!0}))}else await x.unlike(o.id)}catch(f){r(d=>({...d,liked_by_me:!p,like_count:Math.max(0,d.like_count+(p?-1:1))})),i(f)}},_=async()=>{if(confirm("Delete this tweet?"))try{await x.deleteTweet(o.id),n&&n(o.id)}catch(p){i(p)}},s=o.author,h="/@"+s.username;return u`<article class="tweet" ref=${l} data-id=${o.id} aria-labelledby=${"t"+o.id}>
    <${A} href=${h} class="tweet-avatar" tabindex="-1" aria-hidden="true"><${q} user=${s} /><//>
    <div class="tweet-body">
      <header class="tweet-head" id=${"t"+o.id}>
        <${A} href=${h} class="name">${s.name}<//>
        <span class="muted"> @${s.username} · <${Se} iso=${o.created_at} /></span>
      </header>
      ${o.content&&u`<p class="tweet-text">${o.content}</p>`}
      <${qt} media=${o.media} />
      <div class="tweet-actions">
        <button type="button" class=${"like"+(o.liked_by_me?" liked":"")} aria-pressed=${o.liked_by_me?"true":"false"}
          aria-label=${(o.liked_by_me?"Unlike":"Like")+", "+ke(o.like_count,"like")} onClick=${c}>
          <span aria-hidden="true">${o.liked_by_me?"\u2665":"\u2661"}</span> <span class="like-count">${B(o.like_count)}</span>
        </button>
        <span class="views muted" title="Views"><span aria-hidden="true">◉</span> <span class="view-count">${B(o.view_count)}</span><span class="sr-only"> views</span></span>
        ${t&&t.id===s.id&&u`<button type="button" class="link-button muted" onClick=${_}>Delete</button>`}
      </div>
      <${D} error=${a} />
    </div>
  </article>`}function Ee({user:e,me:t}){let[n,o]=$(e);return u`<li class="user-row">
    <${q} user=${n} />
    <div class="user-row-text">
      <${A} href=${"/@"+n.username} class="name">${n.name}<//>
      <div class="muted">@${n.username} · ${ke(n.followers_count,"follower")}</div>
      ${n.bio&&u`<p class="bio">${n.bio}</p>`}
    </div>
    ${t&&t.id!==n.id&&u`<${Te} user=${n} onChange=${o} />`}
  </li>`}function Te({user:e,onChange:t}){let[n,o]=$(!1),[r,a]=$(null),i=!!e.followed_by_me;return u`<div class="follow">
    <button type="button" class=${i?"button secondary":"button"} disabled=${n} onClick=${async()=>{o(!0),a(null);try{if(i)await x.unfollow(e.id),t({...e,followed_by_me:!1,followers_count:Math.max(0,e.followers_count-1)});else{let c=await x.follow(e.id);t({...e,...c,followed_by_me:!0})}}catch(c){a(c)}finally{o(!1)}}}
      aria-label=${(i?"Unfollow @":"Follow @")+e.username}>${i?"Unfollow":"Follow"}</button>
    <${D} error=${r} />
  </div>`}var Wt=[];function K({load:e,render:t,empty:n,poll:o=0,fresh:r=Wt,label:a,list:i="div",initial:l=null}){let[c,_]=$(l?l.data:[]),[s,h]=$(l?l.next_cursor:void 0),[p,f]=$(l?!l.next_cursor:!1),[d,w]=$(!1),[m,v]=$(null),[g,L]=$([]),b=I(),R=I({});R.current={items:c,cursor:s,done:p,loading:d};let k=H(async()=>{let S=R.current;if(!(S.loading||S.done)){w(!0),v(null);try{let T=await e(S.cursor);_(M=>{let Y=new Set(M.map(Q=>Q.id));return M.concat(T.data.filter(Q=>!Y.has(Q.id)))}),h(T.next_cursor),f(!T.next_cursor)}catch(T){v(T)}finally{w(!1)}}},[e]);P(()=>{l||k()},[]),P(()=>{let S=b.current;if(!S||!("IntersectionObserver"in window))return;let T=new IntersectionObserver(M=>{M.some(Y=>Y.isIntersecting)&&k()},{rootMargin:"600px"});return T.observe(S),()=>T.disconnect()},[k,c.length]),P(()=>{r.length&&_(S=>{let T=new Set(S.map(M=>M.id));return r.filter(M=>!T.has(M.id)).concat(S)})},[r]),P(()=>{if(!o)return;let T=setInterval(async()=>{if(!(document.hidden||R.current.items.length===0&&!R.current.done))try{let M=await e(void 0),Y=R.current.items[0],Q=Y?M.data.filter(Ct=>pt(Ct.id,Y.id)):M.data;L(Q)}catch{}},o);return()=>clearInterval(T)},[o,e]);let U=()=>{_(S=>{let T=new Set(S.map(M=>M.id));return g.filter(M=>!T.has(M.id)).concat(S)}),L([]),window.scrollTo({top:0})};P(()=>{c.length&&!R.current.marked&&(R.current.marked=!0,performance.mark("feed-first-page"))},[c.length]);let C=S=>_(T=>T.filter(M=>M.id!==S));return u`<section class="feed" aria-label=${a} aria-busy=${d?"true":"false"}>
    ${g.length>0&&u`<button type="button" class="new-banner" onClick=${U}>
      Show ${g.length===20?"20+":g.length} new tweet${g.length===1?"":"s"}</button>`}
    <${i} class=${"feed-list"+(i==="ul"?" users":"")}>${c.map(S=>t(S,C))}<//>
    ${!d&&p&&c.length===0&&!m&&u`<p class="empty muted">${n}</p>`}
    <${D} error=${m} />
    <div ref=${b} class="feed-end">
      ${d?u`<p class="muted" role="status">Loading…</p>`:!p&&u`<button type="button" class="button secondary" onClick=${k}>Load more</button>`}
    </div>
  </section>`}var Gt="image/jpeg,image/png,image/gif,image/webp,video/mp4,video/quicktime,video/webm";function _t({me:e,onPosted:t,autofocus:n}){let[o,r]=$(""),[a,i]=$([]),[l,c]=$(null),[_,s]=$(null),[h,p]=$(""),f=280-fe(o),d=a.some(k=>k.file.type.startsWith("video/"));P(()=>()=>a.forEach(k=>URL.revokeObjectURL(k.url)),[]);let w=k=>{let U=[...k.target.files];k.target.value="",p("");let C=a.concat(U.map(T=>({file:T,url:URL.createObjectURL(T),description:""}))),S=C.filter(T=>T.file.type.startsWith("video/")).length;if(S>1||S===1&&C.length>1){p("A tweet has up to 4 images, or 1 video alone."),U.length&&C.slice(a.length).forEach(T=>URL.revokeObjectURL(T.url));return}if(C.length>4){p("A tweet has up to 4 images."),C.slice(a.length).forEach(T=>URL.revokeObjectURL(T.url));return}i(C)},m=k=>{URL.revokeObjectURL(a[k].url),i(a.filter((U,C)=>C!==k))},v=(k,U)=>i(a.map((C,S)=>S===k?{...C,description:U}:C)),g=async k=>{k.preventDefault(),s(null),p("");try{let U;if(a.length){let C=new FormData;C.append("content",o);for(let S of a)C.append("media",S.file,S.file.name),S.description.trim()&&C.append("description",S.description.trim());c(0),U=await x.postWithMedia(C,c)}else c(null),U=await x.post(o);a.forEach(C=>URL.revokeObjectURL(C.url)),r(""),i([]),t&&t(U)}catch(U){s(U)}finally{c(null)}},L=X(_),b=l!==null,R=o.trim()===""&&a.length===0;return u`<form class="composer" onSubmit=${g} aria-label="Compose a tweet">
    <${q} user=${e} />
    <div class="composer-body">
      <label for="compose-text" class="sr-only">What is happening?</label>
      <textarea id="compose-text" placeholder="What is happening?" rows="3" value=${o} autofocus=${n}
        aria-describedby=${L.content?"compose-count compose-error":"compose-count"} aria-invalid=${L.content||f<0?"true":"false"}
        onInput=${k=>r(k.target.value)} onKeyDown=${k=>{k.key==="Enter"&&(k.ctrlKey||k.metaKey)&&g(k)}}></textarea>
      ${L.content&&u`<p class="field-error" id="compose-error">${L.content}</p>`}
      ${a.length>0&&u`<ul class="previews" aria-label="Attached media">
        ${a.map((k,U)=>u`<li key=${k.url}>
          ${k.file.type.startsWith("video/")?u`<video src=${k.url} muted controls preload="metadata" aria-label=${"Video "+k.file.name}></video>`:u`<img src=${k.url} alt=${"Attached image "+(U+1)} />`}
          <input type="text" class="alt" maxlength="1500" placeholder="Description (alt text)" aria-label=${"Description of "+k.file.name}
            value=${k.description} onInput=${C=>v(U,C.target.value)} />
          <button type="button" class="remove" onClick=${()=>m(U)} aria-label=${"Remove "+k.file.name}>✕</button>
        </li>`)}
      </ul>`}
      ${b&&u`<div class="progress"><label for="upload-progress">Uploading… ${Math.round(l*100)}%</label>
        <progress id="upload-progress" max="1" value=${l}></progress></div>`}
      <${D} error=${_&&!L.content?_:null} message=${h} />
      <div class="composer-bar">
        <input type="file" id="compose-files" class="sr-only" accept=${Gt} multiple onChange=${w}
          disabled=${b||d||a.length>=4} />
        <label for="compose-files" class=${"button secondary file-button"+(b||d||a.length>=4?" disabled":"")}>Add photos or video</label>
        <span id="compose-count" class=${"counter"+(f<0?" over":f<=20?" near":"")}><span aria-hidden="true">${f}</span>
          <span class="sr-only">${f<0?`${-f} characters over the limit`:`${f} characters left`}</span></span>
        <button type="submit" class="button" disabled=${b||R||f<0}>Tweet</button>
      </div>
    </div>
  </form>`}function z(e){P(()=>{document.title=e?`${e} \xB7 chirp`:"chirp"},[e])}var ht=!0;function mt(){ht=!1}function O({children:e,className:t}){let n=I(),[o]=$(!ht);return P(()=>{o&&n.current&&n.current.focus({preventScroll:!0})},[]),u`<h1 tabindex="-1" ref=${n} class=${t}>${e}</h1>`}function V({id:e,label:t,error:n,hint:o,...r}){let a=[o&&e+"-hint",n&&e+"-error"].filter(Boolean).join(" ")||void 0;return u`<div class="field">
    <label for=${e}>${t}</label>
    <input id=${e} aria-invalid=${n?"true":"false"} aria-describedby=${a} ...${r} />
    ${o&&u`<p class="hint" id=${e+"-hint"}>${o}</p>`}
    ${n&&u`<p class="field-error" id=${e+"-error"}>${n}</p>`}
  </div>`}function $t({me:e,firstPage:t}){z("Home");let[n,o]=$([]),[r]=$(()=>{let i=t.data;return t.data=null,i}),a=H(i=>x.timeline(i),[]);return u`<div>
    <${O}>Home<//>
    <${_t} me=${e} onPosted=${i=>o([i])} />
    <${K} label="Home timeline" load=${a} initial=${r} poll=${4e3} fresh=${n}
      empty="Nothing here yet. Follow people (try Search) or write your first tweet."
      render=${(i,l)=>u`<${me} key=${i.id} tweet=${i} me=${e} onDeleted=${l} />`} />
  </div>`}function vt({onSession:e}){z("Log in");let[t,n]=$({username:"",password:""}),[o,r]=$(null),[a,i]=$(!1),l=async s=>{s.preventDefault(),i(!0),r(null);try{e(await x.login(t.username.trim(),t.password)),F("/",{replace:!0})}catch(h){r(h)}finally{i(!1)}},c=X(o),_=s=>h=>n({...t,[s]:h.target.value});return u`<div class="auth">
    <${O}>Log in to chirp<//>
    <form onSubmit=${l} novalidate>
      <${V} id="login-username" label="Username" autocomplete="username" required value=${t.username} onInput=${_("username")} error=${c.username} />
      <${V} id="login-password" label="Password" type="password" autocomplete="current-password" required value=${t.password} onInput=${_("password")} error=${c.password} />
      <${D} error=${o} />
      <button class="button wide" disabled=${a}>${a?"Logging in\u2026":"Log in"}</button>
    </form>
    <p>New here? <${A} href="/signup">Create an account<//></p>
  </div>`}function gt({onSession:e}){z("Sign up");let[t,n]=$({email:"",username:"",name:"",password:""}),[o,r]=$(null),[a,i]=$(""),[l,c]=$(null),[_,s]=$(!1),[h,p]=$(!1),f=async v=>{v&&v.preventDefault(),s(!0),c(null);try{r(await x.register(t)),p(!v),i("")}catch(g){c(g)}finally{s(!1)}},d=async v=>{v.preventDefault(),s(!0),c(null);try{e(await x.verify(o.email,a.trim())),F("/",{replace:!0})}catch(g){c(g)}finally{s(!1)}},w=X(l),m=v=>g=>n({...t,[v]:g.target.value});if(o){let v=Math.round(o.expires_in/60);return u`<div class="auth">
      <${O}>Enter your code<//>
      <p>We sent a 6-digit code to <strong>${o.email}</strong>. It is valid for ${v} minute${v===1?"":"s"}.</p>
      <p class="note">Running chirp on its embedded defaults (no <code>CHIRP_SMTP_URL</code>)? No email is sent: the code is printed in the server's log.</p>
      <form onSubmit=${d} novalidate>
        <${V} id="signup-code" label="Verification code" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{6}" maxlength="6"
          required value=${a} onInput=${g=>i(g.target.value)} error=${w.code} />
        <${D} error=${l} />
        ${h&&!l&&u`<p role="status" class="muted">A new code is on its way.</p>`}
        <button class="button wide" disabled=${_||a.trim().length!==6}>${_?"Checking\u2026":"Create account"}</button>
      </form>
      <p class="row">
        <button type="button" class="link-button" onClick=${()=>f()} disabled=${_}>Send a new code</button>
        <button type="button" class="link-button" onClick=${()=>{r(null),c(null)}}>Start over</button>
      </p>
    </div>`}return u`<div class="auth">
    <${O}>Create your account<//>
    <form onSubmit=${f} novalidate>
      <${V} id="signup-email" label="Email" type="email" autocomplete="email" required value=${t.email} onInput=${m("email")} error=${w.email} />
      <${V} id="signup-username" label="Username" autocomplete="username" required value=${t.username} onInput=${m("username")}
        hint="3–30 letters, digits or _" error=${w.username||(l&&l.code==="username_taken"?"That username is taken.":null)} />
      <${V} id="signup-name" label="Name" autocomplete="name" required value=${t.name} onInput=${m("name")} error=${w.name} />
      <${V} id="signup-password" label="Password" type="password" autocomplete="new-password" required value=${t.password} onInput=${m("password")}
        hint="At least 8 characters" error=${w.password} />
      <${D} error=${l} />
      <button class="button wide" disabled=${_}>${_?"Sending a code\u2026":"Sign up"}</button>
    </form>
    <p>Have an account? <${A} href="/login">Log in<//></p>
  </div>`}async function jt(e){try{return await x.lookup(e)}catch(t){if(!(t instanceof j)||t.status!==404)throw t;let o=(await x.searchUsers(e)).data.find(r=>r.username.toLowerCase()===e.toLowerCase());if(!o)throw t;return x.user(o.id)}}function yt({me:e,username:t,tab:n,onMe:o}){let[r,a]=$(null),[i,l]=$(null);z(r?`${r.name} (@${r.username})`:"@"+t),P(()=>{let d=!0;return a(null),l(null),jt(t).then(w=>d&&a(w)).catch(w=>d&&l(w)),()=>{d=!1}},[t]);let c=H(d=>x.tweetsBy(r.id,d),[r&&r.id]),_=H(d=>x.followers(r.id,d),[r&&r.id]),s=H(d=>x.followings(r.id,d),[r&&r.id]);if(i)return u`<div><${O}>@${t}<//><${D} error=${i} message=${i.status===404?"No user has this name.":""} /></div>`;if(!r)return u`<p class="muted" role="status">Loading…</p>`;let h=e&&e.id===r.id,p="/@"+r.username,f=[["","Tweets",r.tweets_count],["followers","Followers",r.followers_count],["followings","Following",r.followings_count]];return u`<div>
    <section class="profile" aria-label="Profile">
      <div class="profile-top">
        <${q} user=${r} size=${96} />
        ${h?u`<${A} href="/settings" class="button secondary">Edit profile<//>`:e&&u`<${Te} user=${r} onChange=${a} />`}
      </div>
      <${O} className="profile-name">${r.name}<//>
      <p class="muted">@${r.username}</p>
      ${r.bio&&u`<p class="bio">${r.bio}</p>`}
      <p class="muted">Joined <time datetime=${r.created_at}>${new Date(r.created_at).toLocaleDateString(void 0,{month:"long",year:"numeric"})}</time></p>
      <p class="counts"><strong>${B(r.followings_count)}</strong> Following · <strong>${B(r.followers_count)}</strong> ${r.followers_count===1?"Follower":"Followers"}</p>
    </section>
    <nav class="tabs" aria-label="Profile sections">
      ${f.map(([d,w,m])=>u`<${A} href=${d?p+"/"+d:p} aria-current=${n===d?"page":void 0}>${w} <span class="muted">${B(m)}</span><//>`)}
    </nav>
    ${n===""&&u`<${K} key=${"t"+r.id} label=${"Tweets by @"+r.username} load=${c} empty="No tweets yet."
      render=${(d,w)=>u`<${me} key=${d.id} tweet=${d} me=${e} onDeleted=${w} />`} />`}
    ${n!==""&&u`<${K} key=${n+r.id} list="ul" label=${n==="followers"?"Followers":"Following"}
        load=${n==="followers"?_:s}
        empty=${n==="followers"?"No followers yet.":"Not following anyone yet."}
        render=${d=>u`<${Ee} key=${d.id} user=${d} me=${e} />`} />`}
  </div>`}function bt({me:e,onMe:t,onLogout:n}){z("Edit profile");let[o,r]=$({name:e.name,bio:e.bio||""}),[a,i]=$(null),[l,c]=$(null),[_,s]=$(""),[h,p]=$(null),f=async g=>{g.preventDefault(),i(null),s("");try{t(await x.updateMe({name:o.name,bio:o.bio})),s("Profile saved.")}catch(L){i(L)}},d=async g=>{let L=g.target.files[0];if(g.target.value="",!L)return;c(null),s("");let b=new FormData;b.append("avatar",L,L.name),p(0);try{t(await x.setAvatar(b,p)),s("Avatar updated.")}catch(R){c(R)}finally{p(null)}},w=async()=>{c(null);try{t(await x.removeAvatar()),s("Avatar removed.")}catch(g){c(g)}},m=X(a),v=160-fe(o.bio);return u`<div class="settings">
    <${O}>Edit profile<//>
    <section aria-labelledby="avatar-heading" class="avatar-edit">
      <h2 id="avatar-heading">Avatar</h2>
      <${q} user=${e} size=${96} />
      <div>
        <input type="file" id="avatar-file" class="sr-only" accept="image/jpeg,image/png,image/gif,image/webp" onChange=${d} />
        <label for="avatar-file" class="button secondary file-button">Upload a picture</label>
        ${e.avatar_url&&u`<button type="button" class="button secondary" onClick=${w}>Remove</button>`}
        ${h!==null&&u`<progress max="1" value=${h} aria-label="Uploading avatar"></progress>`}
        <${D} error=${l} />
      </div>
    </section>
    <form onSubmit=${f} novalidate>
      <${V} id="settings-name" label="Name" maxlength="50" required value=${o.name} onInput=${g=>r({...o,name:g.target.value})} error=${m.name} />
      <div class="field">
        <label for="settings-bio">Bio</label>
        <textarea id="settings-bio" rows="3" aria-describedby="bio-left" aria-invalid=${m.bio||v<0?"true":"false"} value=${o.bio}
          onInput=${g=>r({...o,bio:g.target.value})}></textarea>
        <p class=${"hint"+(v<0?" over":"")} id="bio-left">${v} characters left</p>
        ${m.bio&&u`<p class="field-error">${m.bio}</p>`}
      </div>
      <${D} error=${a&&!m.name&&!m.bio?a:null} />
      ${_&&u`<p role="status" class="saved">${_}</p>`}
      <button class="button" disabled=${v<0}>Save</button>
      <${A} href=${"/@"+e.username} class="button secondary">View profile<//>
    </form>
    <section aria-labelledby="session-heading" class="session">
      <h2 id="session-heading">Session</h2>
      <p class="muted">Signed in as @${e.username} (${e.email}).</p>
      <button type="button" class="button secondary" onClick=${n}>Log out</button>
    </section>
  </div>`}function wt({me:e,query:t}){let n=new URLSearchParams(t),o=n.get("q")||"",r=n.get("type")==="users"?"users":"tweets",[a,i]=$(o);z(o?`Search: ${o}`:"Search"),P(()=>i(o),[o]);let l=(s,h)=>F("/search?"+new URLSearchParams({q:s,type:h}).toString()),c=H(s=>x.searchTweets(o,s),[o]),_=H(s=>x.searchUsers(o,s),[o]);return u`<div>
    <${O}>Search<//>
    <form role="search" class="search-form" onSubmit=${s=>{s.preventDefault(),l(a.trim(),r)}}>
      <label for="search-q" class="sr-only">Search chirp</label>
      <input id="search-q" type="search" placeholder=${'Words, a "quoted phrase", or a username'} value=${a} onInput=${s=>i(s.target.value)} />
      <button class="button">Search</button>
    </form>
    <nav class="tabs" aria-label="Search in">
      <${A} href=${"/search?"+new URLSearchParams({q:o,type:"tweets"})} aria-current=${r==="tweets"?"page":void 0}>Tweets<//>
      <${A} href=${"/search?"+new URLSearchParams({q:o,type:"users"})} aria-current=${r==="users"?"page":void 0}>People<//>
    </nav>
    ${o?r==="tweets"?u`<${K} key=${"st"+o} label="Tweets found" load=${c} empty="No tweets match."
            render=${(s,h)=>u`<${me} key=${s.id} tweet=${s} me=${e} onDeleted=${h} />`} />`:u`<${K} key=${"su"+o} list="ul" label="People found" load=${_} empty="No one matches."
            render=${s=>u`<${Ee} key=${s.id} user=${s} me=${e} />`} />`:u`<p class="muted empty">Search tweets by words or a "quoted phrase", and people by username.</p>`}
  </div>`}function kt({live:e,onRead:t}){z("Notifications");let[n,o]=$([]),[r,a]=$(null),[i,l]=$(!1),c=H(h=>x.notifications(h),[]);P(()=>e.subscribe(h=>o(p=>[h,...p])),[]);let _=async()=>{a(null);try{await x.markRead(),l(!0),t()}catch(h){a(h)}},s=h=>u`<${Bt} key=${h.id} n=${h} forceRead=${i} onRead=${t} />`;return u`<div>
    <div class="page-head">
      <${O}>Notifications<//>
      <button type="button" class="button secondary" onClick=${_}>Mark all as read</button>
    </div>
    <${D} error=${r} />
    ${n.length>0&&u`<div class="feed-list live" aria-live="polite">${n.map(s)}</div>`}
    <${K} label="Notifications" load=${c} empty="No notifications yet. When someone likes your tweets, you will see it here." render=${s} />
  </div>`}function Bt({n:e,forceRead:t,onRead:n}){let[o,r]=$(e.read),a=o||t,i=async()=>{try{await x.markRead([e.id]),r(!0),n()}catch{}},l=e.tweet||{};return u`<article class=${"notification"+(a?"":" unread")} aria-label=${(a?"":"Unread: ")+e.message}>
    <${q} user=${e.actor} size=${40} />
    <div>
      <p><span aria-hidden="true" class="heart">♥ </span><${A} href=${"/@"+e.actor.username} class="name">${e.actor.name}<//> <span class="muted">(@${e.actor.username})</span> liked your tweet · <span class="muted"><${Se} iso=${e.created_at} /></span></p>
      ${l.content&&u`<p class="muted quote">${l.content}</p>`}
      ${!a&&u`<button type="button" class="link-button" onClick=${i}>Mark as read</button>`}
    </div>
  </article>`}function xt(){return z("Not found"),u`<div><${O}>Page not found<//><p><${A} href="/">Go home<//></p></div>`}var Vt=we("/session"),Z={current:location.pathname==="/"?we(x.timelinePath):null,data:null},St=Vt.then(async e=>{if(Z.current){let t=Z.current;Z.current=null,Z.data=await t.catch(()=>null)}return e}),Et;await Promise.race([St.then(e=>{Et=e,pe(e.csrf_token)},()=>{}),new Promise(e=>setTimeout(e,100))]);function zt(){let[e,t]=$({path:location.pathname,query:location.search});return P(()=>{let n=()=>t({path:location.pathname,query:location.search});return addEventListener("popstate",n),()=>removeEventListener("popstate",n)},[]),e}function Kt(e){let t=I(new Set),[n,o]=$(0);return P(()=>{if(!e)return;let a=!1,i=()=>x.unreadCount().then(c=>!a&&o(c.unread)).catch(()=>{});i();let l=new EventSource("/api/v1/notifications/stream");return l.addEventListener("notification",c=>{let _;try{_=JSON.parse(c.data)}catch{return}o(s=>s+1),t.current.forEach(s=>s(_))}),l.addEventListener("open",i),()=>{a=!0,l.close()}},[e&&e.id]),{unread:n,setUnread:o,live:{subscribe:a=>(t.current.add(a),()=>t.current.delete(a))}}}var Tt=()=>u`<svg class="glyph" viewBox="0 0 32 32" aria-hidden="true" focusable="false"><path fill="currentColor"
  d="M5 23c5 2 12 1 16-5l1.6-4.7L26 12l-3.3-1.2C21.4 7 16.6 6.6 14.5 10.2 10 10.2 7.3 8 6 5.5c-.6 4.8 1.3 7.9 4.6 9.2-2.8 1.3-4.6 3.6-5.6 8.3z" /></svg>`,Yt=()=>u`<svg class="glyph" viewBox="0 0 24 24" aria-hidden="true" focusable="false"><path fill="currentColor"
  d="M12 22a2.5 2.5 0 0 0 2.45-2h-4.9A2.5 2.5 0 0 0 12 22zm7-6V11a7 7 0 0 0-5.5-6.84V3.5a1.5 1.5 0 0 0-3 0v.66A7 7 0 0 0 5 11v5l-2 2v1h18v-1l-2-2z" /></svg>`;function Jt({me:e,unread:t,path:n,onLogout:o}){let r=(i,l,c,_)=>u`<li><${A} href=${i} aria-current=${n===i?"page":void 0}>
    <span class="icon" aria-hidden="true">${c}</span><span class="label">${l}</span>${_}<//></li>`,a=t>0&&u`<span class="badge"><span aria-hidden="true">${t>99?"99+":t}</span><span class="sr-only">, ${t} unread</span></span>`;return u`<nav class="nav" aria-label="Main">
    <${A} href="/" class="brand" aria-label="chirp home"><${Tt} /><span class="label"> chirp</span><//>
    <ul>
      ${r("/","Home","\u2302")}
      ${r("/search","Search","\u2315")}
      ${r("/notifications","Notifications",u`<${Yt} />`,a)}
      ${r("/@"+e.username,"Profile","\u263A")}
      ${r("/settings","Settings","\u2699")}
    </ul>
    <div class="nav-me">
      <${q} user=${e} size=${32} />
      <span class="label">@${e.username}</span>
      <button type="button" class="link-button" onClick=${o}>Log out</button>
    </div>
  </nav>`}function Xt(){let[e,t]=$(Et),{path:n,query:o}=zt(),r=e&&e.user,{unread:a,setUnread:i,live:l}=Kt(r),c=m=>{pe(m.csrf_token),t(m)},_=()=>{pe(null),t(null)};if(P(()=>(St.then(c,m=>{m.status===401&&x.logout().catch(()=>{}),Z.current=null,_()}),st(()=>{_(),F("/login",{replace:!0})})),[]),e===void 0)return u`<main id="main" class="loading" aria-busy="true"><p class="muted">Loading…</p></main>`;let s=n==="/login"||n==="/signup";if(!r&&!s&&!n.startsWith("/@"))return queueMicrotask(()=>F("/login",{replace:!0})),null;if(r&&s)return queueMicrotask(()=>F("/",{replace:!0})),null;let h=async()=>{try{await x.logout()}catch{}_(),F("/login",{replace:!0})},p=m=>t(v=>({...v,user:{...v.user,...m}})),f=()=>x.unreadCount().then(m=>i(m.unread)).catch(()=>{}),d,w=n.match(/^\/@([A-Za-z0-9_]{1,30})(?:\/(followers|followings))?\/?$/);return n==="/login"?d=u`<${vt} onSession=${c} />`:n==="/signup"?d=u`<${gt} onSession=${c} />`:n==="/"?d=u`<${$t} me=${r} firstPage=${Z} />`:w?d=u`<${yt} key=${w[1].toLowerCase()} me=${r} username=${w[1]} tab=${w[2]||""} />`:n==="/search"?d=u`<${wt} me=${r} query=${o} />`:n==="/notifications"?d=u`<${kt} live=${l} onRead=${f} />`:n==="/settings"?d=u`<${bt} me=${r} onMe=${p} onLogout=${h} />`:d=u`<${xt} />`,u`<div class=${r?"shell":"shell signed-out"}>
    <a class="skip" href="#main">Skip to content</a>
    ${r?u`<${Jt} me=${r} unread=${a} path=${n} onLogout=${h} />`:u`<header class="nav signed-out-bar"><${A} href="/login" class="brand"><${Tt} /> chirp<//><${A} href="/signup" class="button">Sign up<//></header>`}
    <main id="main" tabindex="-1">${d}</main>
  </div>`}Qe(u`<${Xt} />`,document.getElementById("root"));mt();
//# sourceMappingURL=app.js.map
